/* The simulator's state, shared by ble_sim.c (server) and ble_sim_profiles.c (profiles).
 * Internal: users go through ble_sim.h. */
#ifndef ENGAGED_BLE_SIM_INT_H
#define ENGAGED_BLE_SIM_INT_H

#include "drivers/ble_sim.h"

struct sim_attr {
    uint16_t handle;
    struct att_uuid type;
    uint8_t perm;
    uint8_t props;            /* characteristic values: the declaration's properties */
    uint16_t end;             /* service declarations: last handle of the service */
    uint16_t cccd;            /* characteristic values: their CCCD handle, 0 if none */
    uint8_t sec_level;        /* the link level reading or writing it needs (0: any) */
    uint8_t sec_ecode;        /* the error below it (0: by the level) */
    uint16_t len;
    uint8_t *value;
    blesim_gen_fn refresh;
    blesim_write_fn on_write;
    void *hook_data;
};

struct sim_stream {
    uint16_t handle;
    int64_t period_ns, next_ns;   /* next_ns INT64_MAX while the CCCD is off */
    int64_t phase_ns;             /* >= 0: ticks at times of this phase (blesim_set_phase) */
    uint64_t count;
    blesim_gen_fn gen;
    void *user_data;
};

struct blesim {
    int fd;
    int closed;
    uint16_t server_mtu, mtu;
    int64_t now_ns;
    int ind_pending;
    int security;                 /* the link's level: 1 until the client raises it */
    struct sim_attr *attrs;       /* attrs[i].handle == i + 1 */
    size_t n_attrs;
    long cur_service;             /* index of the last service declaration, -1 none */
    long cur_chrc;                /* index of the last characteristic value, -1 none */
    struct sim_stream streams[BLESIM_MAX_STREAMS];
    size_t n_streams;
    struct blesim_faults faults;
    struct blesim_stats stats;
    blesim_write_fn write_hook;
    void *write_data;
    void *owned[BLESIM_MAX_OWNED];
    size_t n_owned;
    void *profile;                /* ble_sim_profiles.c state, also in owned */
    uint8_t rx[ATT_MAX_LE_MTU + 1];
};

/* Attribute of handle h, or NULL. */
struct sim_attr *blesim_attr(const struct blesim *s, uint16_t h);
/* Replaces a's value (<= ATT_MAX_VALUE_LEN bytes): 0, -EMSGSIZE, -ENOMEM. */
int blesim_store(struct sim_attr *a, const void *value, size_t len);
/* Sends one PDU: 0, -EAGAIN (dropped, counted), -ENOTCONN (link gone: closed is set). */
int blesim_xmit(struct blesim *s, const uint8_t *p, size_t n);
/* The CCCD of value handle h changed: (re)starts or stops its streams. */
void blesim_cccd_changed(struct blesim *s, uint16_t h);

#endif
