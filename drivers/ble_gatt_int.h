/* The GATT client's state, shared by ble_gatt.c (procedure, notifications) and
 * ble_gatt_ops.c (reads, writes, subscriptions). Internal: users go through ble_gatt.h. */
#ifndef ENGAGED_BLE_GATT_INT_H
#define ENGAGED_BLE_GATT_INT_H

#include "drivers/ble_gatt.h"

/* client procedure steps, in order (ble_gatt.h) */
enum gatt_step {
    S_MTU, S_FEAT, S_HASH, S_PRIM, S_SEC, S_INCL, S_CHRC, S_DESC, S_SC, S_READY, S_FAILED
};
enum { OP_READ, OP_WRITE, OP_SUB };

struct gatt_op {
    struct gatt_op *next, *prev;
    struct gatt *g;          /* NULL once the gatt is freed */
    int id, att_id, refs, kind, sub_id, done;
    uint16_t handle;
    gatt_read_fn read_cb;
    gatt_write_fn write_cb;
    void *user_data;
    att_destroy_fn destroy;
    size_t len;
    uint8_t *buf;            /* OP_READ: ATT_MAX_VALUE_LEN bytes */
};

struct gatt_sub {
    int id;                  /* 0: free slot */
    uint16_t handle;
    gatt_notify_fn fn;
    gatt_write_fn done;
    void *user_data;
    att_destroy_fn destroy;
};

struct gatt {
    struct att *att;
    struct gatt_opts opts;
    struct att_uuid wanted[GATT_MAX_WANTED];
    char device[GATT_DEVICE_MAX + 1];
    int notify_id, close_id;
    enum gatt_step step;
    int disc_id;
    uint32_t cursor;         /* may reach 0x10000: past the last handle */
    uint16_t lo, hi;         /* range the services span */
    size_t chrc_i;
    struct gatt_db db;
    /* gatt_new_changed: discovery limited to [range_lo, range_hi]; keep is the previous
     * database outside it, merged into db when the descriptors are done */
    int partial;
    uint16_t range_lo, range_hi;
    struct gatt_db keep;
    int from_cache, have_hash;
    uint8_t hash[16], features;
    uint16_t sc_handle;
    struct gatt_op *ops;
    size_t n_ops;
    struct gatt_sub subs[GATT_MAX_SUBS];
    size_t subs_end;         /* subs[subs_end..] have never been used: a notification
                              * looks no further */
    int next_id, depth, free_pending;
};

/* Leaves a callback site (depth--), releasing a gatt freed meanwhile. */
void gatt_leave(struct gatt *g);
int gatt_next_id(struct gatt *g);
/* gatt_free's part for ops and subscriptions: cancels the ops (their callbacks will not run;
 * one running now finishes with op->g == NULL) and unregisters every subscription. */
void gatt_ops_detach(struct gatt *g);

#endif
