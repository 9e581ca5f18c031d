#!/usr/bin/python3
"""A stand-in for systemd's notify socket: binds a datagram socket at PATH and appends every
message it receives to OUT, one line per message, until killed."""
import socket
import sys

path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
with open(out, "a") as f:
    while True:
        msg = s.recv(4096).decode(errors="replace")
        f.write(msg.replace("\n", " ") + "\n")
        f.flush()
