/* mb_mdp.h — Majordomo Protocol 0.2 (ZeroMQ RFC 18) constants and timing.
 *
 * Clients use DEALER sockets and send [MDPC02][0x01][service][body…]; the
 * broker answers [MDPC02][0x03][service][body…]. Workers use DEALER sockets
 * and speak MDPW02 (READY, REQUEST, PARTIAL, FINAL, HEARTBEAT, DISCONNECT).
 */
#ifndef MB_MDP_H
#define MB_MDP_H

#include <stddef.h>
#include <stdint.h>

#define MB_MDPC "MDPC02"
#define MB_MDPW "MDPW02"

enum { MB_MDPC_REQUEST = 1, MB_MDPC_PARTIAL = 2, MB_MDPC_FINAL = 3 };
enum {
    MB_MDPW_READY = 1,
    MB_MDPW_REQUEST = 2,
    MB_MDPW_PARTIAL = 3,
    MB_MDPW_FINAL = 4,
    MB_MDPW_HEARTBEAT = 5,
    MB_MDPW_DISCONNECT = 6
};

/* Heartbeat interval in ms, from MOEBUS_HEARTBEAT_MS (default 1000). The
 * broker and its workers must agree on it (RFC 18), so every process reads the
 * same variable. A peer is dead after MB_HEARTBEAT_LIVENESS silent intervals. */
int mb_heartbeat_ms(void);
#define MB_HEARTBEAT_LIVENESS 3

/* Monotonic clock in milliseconds. */
int64_t mb_clock_ms(void);
/* Monotonic clock in microseconds. */
int64_t mb_clock_us(void);

/* Turns a bind endpoint into one peers can connect to (tcp://STAR:5555 ->
 * "tcp://127.0.0.1:5555"). Writes into out (size outsz). */
void mb_endpoint_connectable(const char *bind, char *out, size_t outsz);

#endif
