"""The listening side the fake peers of the integration tests share (fake_hci.py,
fake_mgmt.py): a Unix SEQPACKET socket whose connections are served one at a time, and which
goes away while a file exists (connects then fail with ENOENT, as when an adapter is unplugged
or the Bluetooth module unloaded) and is offered again once the file is removed."""
import os
import select
import socket
import time


def listen(path):
    if os.path.exists(path):
        os.unlink(path)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    srv.bind(path)
    srv.listen(4)
    return srv


def serve_forever(path, down, serve):
    """Calls serve(conn) for each connection to path, in turn, closing it after; serve should
    return when the file down appears. An OSError from serve (the peer went away mid-send)
    ends that connection only."""
    srv = None
    while True:
        if os.path.exists(down):
            if srv:
                srv.close()
                os.unlink(path)
                srv = None
            time.sleep(0.05)
            continue
        if not srv:
            srv = listen(path)
        if not select.select([srv], [], [], 0.05)[0]:
            continue
        conn, _ = srv.accept()
        try:
            serve(conn)
        except OSError:
            pass
        conn.close()
