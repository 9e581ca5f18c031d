/* ATT codec: opcode classes and names, error codes, UUIDs, response parsing. Pure functions
 * over byte buffers (no I/O, no state), shared by the bearer (ble_att.c), the GATT client,
 * the simulator and the fuzz harness. Every parser checks the whole length before it reads. */
#include "drivers/ble_att.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Bluetooth base UUID 00000000-0000-1000-8000-00805f9b34fb, little-endian; bytes 12-13 hold
 * the 16-bit value (bytes 14-15 the upper half of a 32-bit one). */
static const uint8_t base_uuid[16] = {0xfb, 0x34, 0x9b, 0x5f, 0x80, 0x00, 0x00, 0x80,
                                      0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};

enum att_kind att_op_kind(uint8_t op)
{
    switch (op) {
    case ATT_OP_ERROR_RSP: case ATT_OP_MTU_RSP: case ATT_OP_FIND_INFO_RSP:
    case ATT_OP_FIND_BY_TYPE_RSP: case ATT_OP_READ_BY_TYPE_RSP: case ATT_OP_READ_RSP:
    case ATT_OP_READ_BLOB_RSP: case ATT_OP_READ_MULT_RSP: case ATT_OP_READ_BY_GROUP_RSP:
    case ATT_OP_WRITE_RSP: case ATT_OP_PREP_WRITE_RSP: case ATT_OP_EXEC_WRITE_RSP:
    case ATT_OP_READ_MULT_VAR_RSP:
        return ATT_KIND_RESPONSE;
    case ATT_OP_NOTIFY: case ATT_OP_MULT_NOTIFY:
        return ATT_KIND_NOTIFY;
    case ATT_OP_INDICATE:
        return ATT_KIND_INDICATE;
    case ATT_OP_CONFIRM:
        return ATT_KIND_CONFIRM;
    default:
        return op & ATT_OP_CMD_FLAG ? ATT_KIND_COMMAND : ATT_KIND_REQUEST;
    }
}

uint8_t att_rsp_opcode(uint8_t req)
{
    switch (req) {
    case ATT_OP_MTU_REQ: case ATT_OP_FIND_INFO_REQ: case ATT_OP_FIND_BY_TYPE_REQ:
    case ATT_OP_READ_BY_TYPE_REQ: case ATT_OP_READ_REQ: case ATT_OP_READ_BLOB_REQ:
    case ATT_OP_READ_MULT_REQ: case ATT_OP_READ_BY_GROUP_REQ: case ATT_OP_WRITE_REQ:
    case ATT_OP_PREP_WRITE_REQ: case ATT_OP_EXEC_WRITE_REQ: case ATT_OP_READ_MULT_VAR_REQ:
        return (uint8_t)(req + 1);
    default:
        return 0;
    }
}

const char *att_op_str(uint8_t op)
{
    switch (op) {
    case ATT_OP_ERROR_RSP: return "Error Response";
    case ATT_OP_MTU_REQ: return "Exchange MTU Request";
    case ATT_OP_MTU_RSP: return "Exchange MTU Response";
    case ATT_OP_FIND_INFO_REQ: return "Find Information Request";
    case ATT_OP_FIND_INFO_RSP: return "Find Information Response";
    case ATT_OP_FIND_BY_TYPE_REQ: return "Find By Type Value Request";
    case ATT_OP_FIND_BY_TYPE_RSP: return "Find By Type Value Response";
    case ATT_OP_READ_BY_TYPE_REQ: return "Read By Type Request";
    case ATT_OP_READ_BY_TYPE_RSP: return "Read By Type Response";
    case ATT_OP_READ_REQ: return "Read Request";
    case ATT_OP_READ_RSP: return "Read Response";
    case ATT_OP_READ_BLOB_REQ: return "Read Blob Request";
    case ATT_OP_READ_BLOB_RSP: return "Read Blob Response";
    case ATT_OP_READ_MULT_REQ: return "Read Multiple Request";
    case ATT_OP_READ_MULT_RSP: return "Read Multiple Response";
    case ATT_OP_READ_BY_GROUP_REQ: return "Read By Group Type Request";
    case ATT_OP_READ_BY_GROUP_RSP: return "Read By Group Type Response";
    case ATT_OP_WRITE_REQ: return "Write Request";
    case ATT_OP_WRITE_RSP: return "Write Response";
    case ATT_OP_PREP_WRITE_REQ: return "Prepare Write Request";
    case ATT_OP_PREP_WRITE_RSP: return "Prepare Write Response";
    case ATT_OP_EXEC_WRITE_REQ: return "Execute Write Request";
    case ATT_OP_EXEC_WRITE_RSP: return "Execute Write Response";
    case ATT_OP_NOTIFY: return "Handle Value Notification";
    case ATT_OP_INDICATE: return "Handle Value Indication";
    case ATT_OP_CONFIRM: return "Handle Value Confirmation";
    case ATT_OP_READ_MULT_VAR_REQ: return "Read Multiple Variable Request";
    case ATT_OP_READ_MULT_VAR_RSP: return "Read Multiple Variable Response";
    case ATT_OP_MULT_NOTIFY: return "Multiple Handle Value Notification";
    case ATT_OP_WRITE_CMD: return "Write Command";
    case ATT_OP_SIGNED_WRITE_CMD: return "Signed Write Command";
    default: return "unknown";
    }
}

const char *att_ecode_str(uint8_t e)
{
    static const char *const names[] = {
        [ATT_ECODE_INVALID_HANDLE] = "Invalid Handle",
        [ATT_ECODE_READ_NOT_PERMITTED] = "Read Not Permitted",
        [ATT_ECODE_WRITE_NOT_PERMITTED] = "Write Not Permitted",
        [ATT_ECODE_INVALID_PDU] = "Invalid PDU",
        [ATT_ECODE_AUTHENTICATION] = "Insufficient Authentication",
        [ATT_ECODE_REQ_NOT_SUPPORTED] = "Request Not Supported",
        [ATT_ECODE_INVALID_OFFSET] = "Invalid Offset",
        [ATT_ECODE_AUTHORIZATION] = "Insufficient Authorization",
        [ATT_ECODE_PREP_QUEUE_FULL] = "Prepare Queue Full",
        [ATT_ECODE_ATTR_NOT_FOUND] = "Attribute Not Found",
        [ATT_ECODE_ATTR_NOT_LONG] = "Attribute Not Long",
        [ATT_ECODE_ENC_KEY_SIZE] = "Encryption Key Size Too Short",
        [ATT_ECODE_INVALID_VALUE_LEN] = "Invalid Attribute Value Length",
        [ATT_ECODE_UNLIKELY] = "Unlikely Error",
        [ATT_ECODE_ENCRYPTION] = "Insufficient Encryption",
        [ATT_ECODE_UNSUPPORTED_GROUP] = "Unsupported Group Type",
        [ATT_ECODE_INSUFFICIENT_RESOURCES] = "Insufficient Resources",
        [ATT_ECODE_DB_OUT_OF_SYNC] = "Database Out Of Sync",
        [ATT_ECODE_VALUE_NOT_ALLOWED] = "Value Not Allowed",
    };
    if (e < sizeof names / sizeof names[0] && names[e])
        return names[e];
    if (e >= 0x80 && e <= 0x9F)
        return "application error";
    switch (e) {
    case ATT_ECODE_CCCD_IMPROPER: return "CCCD Improperly Configured";
    case ATT_ECODE_PROC_IN_PROGRESS: return "Procedure Already in Progress";
    case ATT_ECODE_OUT_OF_RANGE: return "Out of Range";
    default: return "reserved";
    }
}

int att_ecode_errno(uint8_t e)
{
    switch (e) {
    case ATT_ECODE_INVALID_HANDLE: case ATT_ECODE_VALUE_NOT_ALLOWED: return -EINVAL;
    case ATT_ECODE_READ_NOT_PERMITTED: case ATT_ECODE_WRITE_NOT_PERMITTED: return -EPERM;
    case ATT_ECODE_INVALID_PDU: return -EBADMSG;
    case ATT_ECODE_AUTHENTICATION: case ATT_ECODE_AUTHORIZATION:
    case ATT_ECODE_ENC_KEY_SIZE: case ATT_ECODE_ENCRYPTION: return -EACCES;
    case ATT_ECODE_REQ_NOT_SUPPORTED: case ATT_ECODE_UNSUPPORTED_GROUP: return -EOPNOTSUPP;
    case ATT_ECODE_INVALID_OFFSET: case ATT_ECODE_OUT_OF_RANGE: return -ERANGE;
    case ATT_ECODE_PREP_QUEUE_FULL: return -ENOSPC;
    case ATT_ECODE_ATTR_NOT_FOUND: return -ENOENT;
    case ATT_ECODE_ATTR_NOT_LONG: return -ENODATA;
    case ATT_ECODE_INVALID_VALUE_LEN: return -EMSGSIZE;
    case ATT_ECODE_UNLIKELY: return -EIO;
    case ATT_ECODE_INSUFFICIENT_RESOURCES: return -EBUSY;
    case ATT_ECODE_DB_OUT_OF_SYNC: return -ESTALE;
    case ATT_ECODE_PROC_IN_PROGRESS: return -EALREADY;
    default: return -EREMOTEIO;
    }
}

int att_security_next(uint8_t ecode, int level)
{
    switch (ecode) {
    case ATT_ECODE_ENCRYPTION:
    case ATT_ECODE_ENC_KEY_SIZE:
        return level < ATT_SECURITY_MEDIUM ? ATT_SECURITY_MEDIUM : 0;
    case ATT_ECODE_AUTHENTICATION:
        return level < ATT_SECURITY_MEDIUM ? ATT_SECURITY_MEDIUM
               : level < ATT_SECURITY_FIPS ? level + 1 : 0;
    default:
        return 0;
    }
}

struct att_uuid att_uuid16(uint16_t v)
{
    struct att_uuid u;
    memcpy(u.b, base_uuid, 16);
    att_put16(u.b + 12, v);
    return u;
}

int att_uuid_to16(const struct att_uuid *u, uint16_t *ret)
{
    if (memcmp(u->b, base_uuid, 12) || u->b[14] || u->b[15])
        return 0;
    *ret = att_get16(u->b + 12);
    return 1;
}

int att_uuid_eq(const struct att_uuid *a, const struct att_uuid *b)
{
    return !memcmp(a->b, b->b, 16);
}

int att_uuid_from_wire(struct att_uuid *u, const uint8_t *p, size_t len)
{
    if (len == 2) {
        *u = att_uuid16(att_get16(p));
        return 0;
    }
    if (len == 16) {
        memcpy(u->b, p, 16);
        return 0;
    }
    return -EINVAL;
}

size_t att_uuid_to_wire(const struct att_uuid *u, uint8_t *p)
{
    uint16_t v;
    if (att_uuid_to16(u, &v)) {
        att_put16(p, v);
        return 2;
    }
    memcpy(p, u->b, 16);
    return 16;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int att_uuid_parse(struct att_uuid *u, const char *s)
{
    size_t n = strlen(s);
    if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        s += 2;
        n -= 2;
    }
    if (n == 4) {
        unsigned v = 0;
        for (size_t i = 0; i < 4; i++) {
            int h = hexval(s[i]);
            if (h < 0)
                return -EINVAL;
            v = v << 4 | (unsigned)h;
        }
        *u = att_uuid16((uint16_t)v);
        return 0;
    }
    if (n != 36)
        return -EINVAL;
    /* Text is big-endian: the first pair of digits is the last wire byte. */
    size_t k = 16;
    for (size_t i = 0; i < 36;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return -EINVAL;
            i++;
            continue;
        }
        int hi = hexval(s[i]), lo = hexval(s[i + 1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        u->b[--k] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    return 0;
}

char *att_uuid_str(const struct att_uuid *u, char *buf, size_t cap)
{
    uint16_t v;
    if (att_uuid_to16(u, &v)) {
        snprintf(buf, cap, "0x%04x", v);
        return buf;
    }
    const uint8_t *b = u->b;
    snprintf(buf, cap, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[15], b[14], b[13], b[12], b[11], b[10], b[9], b[8], b[7], b[6], b[5], b[4],
             b[3], b[2], b[1], b[0]);
    return buf;
}

int att_parse_error(const uint8_t *p, size_t n, struct att_error_rsp *ret)
{
    if (n != 4)
        return -EPROTO;
    ret->req_opcode = p[0];
    ret->handle = att_get16(p + 1);
    ret->ecode = p[3];
    return 0;
}

/* n bytes at p as whole entries of elen, at least one. */
static int list(const uint8_t *p, size_t n, size_t elen, struct att_list *ret)
{
    if (elen == 0 || n < elen || n % elen)
        return -EPROTO;
    ret->p = p;
    ret->elen = elen;
    ret->count = n / elen;
    return 0;
}

int att_parse_find_info(const uint8_t *p, size_t n, struct att_list *ret)
{
    if (n < 1 || (p[0] != 1 && p[0] != 2))
        return -EPROTO;
    ret->format = p[0];
    return list(p + 1, n - 1, p[0] == 1 ? 4 : 18, ret);
}

int att_parse_find_by_type(const uint8_t *p, size_t n, struct att_list *ret)
{
    ret->format = 0;
    return list(p, n, 4, ret);
}

int att_parse_read_by_type(const uint8_t *p, size_t n, struct att_list *ret)
{
    if (n < 1 || p[0] < 2)
        return -EPROTO;
    ret->format = 0;
    return list(p + 1, n - 1, p[0], ret);
}

int att_parse_read_by_group(const uint8_t *p, size_t n, struct att_list *ret)
{
    if (n < 1 || p[0] < 4)
        return -EPROTO;
    ret->format = 0;
    return list(p + 1, n - 1, p[0], ret);
}
