/* A C-speed Verification SCP for benchmarks: the reference peer that answers in microseconds.
 *
 * Rules: loopback only (it binds 127.0.0.1); it stops by itself when its stdin closes or after
 * --max-seconds; it serves up to MAX_CLIENTS associations at once with poll(2); every reply
 * goes out in one write(2) on a TCP_NODELAY socket. It accepts every presentation context for
 * the Verification SOP Class (Implicit VR Little Endian when proposed, else the first transfer
 * syntax) and rejects others, answers each C-ECHO-RQ with a Success C-ECHO-RSP, an
 * A-RELEASE-RQ with an A-RELEASE-RP; anything else closes the connection. It is a load peer,
 * not a conformant SCP: it trusts well-formed input and drops a connection on anything odd.
 *
 * Prints {"pid": N, "listeners": [["127.0.0.1", PORT]]} when listening and
 * {"cpu_s": S, "wall_s": S, "counters": {...}} when it stops.
 *
 * Build: gcc -O2 -o c_scp c_scp.c      Run: ./c_scp [--port P] [--max-seconds S]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 1024
#define BUF_SIZE (132 * 1024)  /* a whole P-DATA-TF of the largest max PDU a client may use */
#define VERIFICATION "1.2.840.10008.1.1"
#define IMPLICIT_LE "1.2.840.10008.1.2"
#define IMPL_UID "1.2.826.0.1.3680043.9.7433.1.1"

struct client {
    int fd;
    size_t len;
    unsigned char buf[BUF_SIZE];
};

static struct client clients[MAX_CLIENTS];
static unsigned long n_assoc, n_echo, n_release, n_dropped;

static void put16(unsigned char *p, unsigned v) { p[0] = v >> 8; p[1] = v; }
static void put32(unsigned char *p, unsigned long v) {
    p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
}
static unsigned get16(const unsigned char *p) { return (p[0] << 8) | p[1]; }
static unsigned long get32(const unsigned char *p) {
    return ((unsigned long)p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3];
}
static void le16(unsigned char *p, unsigned v) { p[0] = v; p[1] = v >> 8; }
static void le32(unsigned char *p, unsigned long v) {
    p[0] = v; p[1] = v >> 8; p[2] = v >> 16; p[3] = v >> 24;
}

static int send_all(int fd, const unsigned char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w; n -= (size_t)w;
    }
    return 0;
}

static size_t item(unsigned char *out, unsigned type, const char *uid) {
    size_t n = strlen(uid);
    out[0] = type; out[1] = 0; put16(out + 2, (unsigned)n);
    memcpy(out + 4, uid, n);
    return 4 + n;
}

/* The A-ASSOCIATE-AC for the A-ASSOCIATE-RQ in pdu[0..len): 0 on success. */
static int associate(int fd, const unsigned char *pdu, size_t len) {
    static unsigned char ac[16384];
    if (len < 74) return -1;
    size_t o = 0;
    ac[o++] = 2; ac[o++] = 0; o += 4;                  /* type, reserved, length later */
    memcpy(ac + o, pdu + 6, 68); o += 68;              /* version, reserved, AEs, reserved */
    size_t i = 74;
    while (i + 4 <= len) {
        unsigned t = pdu[i];
        size_t il = get16(pdu + i + 2);
        if (i + 4 + il > len) return -1;
        const unsigned char *b = pdu + i + 4;
        if (t == 0x10) {
            o += item(ac + o, 0x10, (const char *)"1.2.840.10008.3.1.1.1");
        } else if (t == 0x20 && il >= 4) {
            unsigned id = b[0];
            int verification = 0;
            const unsigned char *first_ts = NULL, *chosen = NULL;
            size_t first_n = 0, chosen_n = 0;
            size_t j = 4;
            while (j + 4 <= il) {
                unsigned st = b[j];
                size_t sl = get16(b + j + 2);
                if (j + 4 + sl > il) return -1;
                const unsigned char *v = b + j + 4;
                size_t vn = sl;
                while (vn && v[vn - 1] == 0) vn--;       /* UIDs may be NUL-padded */
                if (st == 0x30 && vn == strlen(VERIFICATION) && !memcmp(v, VERIFICATION, vn))
                    verification = 1;
                if (st == 0x40) {
                    if (!first_ts) { first_ts = v; first_n = vn; }
                    if (vn == strlen(IMPLICIT_LE) && !memcmp(v, IMPLICIT_LE, vn)) {
                        chosen = v; chosen_n = vn;
                    }
                }
                j += 4 + sl;
            }
            if (!chosen) { chosen = first_ts; chosen_n = first_n; }
            if (o + 8 + 4 + chosen_n > sizeof ac - 512) return -1;
            size_t start = o;
            ac[o++] = 0x21; ac[o++] = 0; o += 2;
            ac[o++] = id; ac[o++] = 0; ac[o++] = verification && chosen ? 0 : 3; ac[o++] = 0;
            ac[o++] = 0x40; ac[o++] = 0; put16(ac + o, (unsigned)chosen_n); o += 2;
            if (chosen_n) { memcpy(ac + o, chosen, chosen_n); o += chosen_n; }
            put16(ac + start + 2, (unsigned)(o - start - 4));
        }
        i += 4 + il;
    }
    size_t ui = o;
    ac[o++] = 0x50; ac[o++] = 0; o += 2;
    ac[o++] = 0x51; ac[o++] = 0; put16(ac + o, 4); o += 2; put32(ac + o, 16384); o += 4;
    o += item(ac + o, 0x52, IMPL_UID);
    o += item(ac + o, 0x55, "C_SCP");
    put16(ac + ui + 2, (unsigned)(o - ui - 4));
    put32(ac + 2, o - 6);
    n_assoc++;
    return send_all(fd, ac, o);
}

/* The C-ECHO-RSP for the command in a P-DATA-TF pdu[0..len): 0 on success. */
static int echo(int fd, const unsigned char *pdu, size_t len) {
    if (len < 12) return -1;
    unsigned long pdv_len = get32(pdu + 6);
    unsigned ctx = pdu[10], control = pdu[11];
    if (pdv_len < 2 || 10 + pdv_len > len || !(control & 1) || !(control & 2)) return -1;
    /* PDV item at 6: length, context ID, control header, then the command's elements */
    const unsigned char *p = pdu + 12, *end = pdu + 10 + pdv_len;
    unsigned msg_id = 0, field = 0;
    while (p + 8 <= end) {
        unsigned group = p[0] | (p[1] << 8), elem = p[2] | (p[3] << 8);
        unsigned long vl = p[4] | (p[5] << 8) | ((unsigned long)p[6] << 16) | ((unsigned long)p[7] << 24);
        if (p + 8 + vl > end) return -1;
        if (group == 0 && elem == 0x0100 && vl == 2) field = p[8] | (p[9] << 8);
        if (group == 0 && elem == 0x0110 && vl == 2) msg_id = p[8] | (p[9] << 8);
        p += 8 + vl;
    }
    if (field != 0x0030) return -1;
    static const char sop[] = VERIFICATION "\0";    /* even length: 18 */
    unsigned char r[128];
    size_t o = 12;
    size_t body = 12 + (8 + 18) + 10 + 10 + 10 + 10;     /* after the group length element */
    le16(r + o, 0); le16(r + o + 2, 0); le32(r + o + 4, 4); le32(r + o + 8, body - 12); o += 12;
    le16(r + o, 0); le16(r + o + 2, 2); le32(r + o + 4, 18); memcpy(r + o + 8, sop, 18); o += 26;
    le16(r + o, 0); le16(r + o + 2, 0x100); le32(r + o + 4, 2); le16(r + o + 8, 0x8030); o += 10;
    le16(r + o, 0); le16(r + o + 2, 0x120); le32(r + o + 4, 2); le16(r + o + 8, msg_id); o += 10;
    le16(r + o, 0); le16(r + o + 2, 0x800); le32(r + o + 4, 2); le16(r + o + 8, 0x0101); o += 10;
    le16(r + o, 0); le16(r + o + 2, 0x900); le32(r + o + 4, 2); le16(r + o + 8, 0); o += 10;
    r[0] = 4; r[1] = 0; put32(r + 2, o - 6);
    put32(r + 6, o - 10); r[10] = ctx; r[11] = 3;
    n_echo++;
    return send_all(fd, r, o);
}

/* Handle every whole PDU in c->buf; -1 closes the connection. */
static int handle(struct client *c) {
    size_t off = 0;
    int rc = 0;
    while (c->len - off >= 6) {
        const unsigned char *pdu = c->buf + off;
        unsigned long body = get32(pdu + 2);
        if (body > BUF_SIZE - 6) return -1;
        if (c->len - off < 6 + body) break;
        size_t n = 6 + body;
        switch (pdu[0]) {
        case 1: rc = associate(c->fd, pdu, n); break;
        case 4: rc = echo(c->fd, pdu, n); break;
        case 5: {
            static const unsigned char rp[10] = {6, 0, 0, 0, 0, 4, 0, 0, 0, 0};
            n_release++;
            send_all(c->fd, rp, sizeof rp);
            return -1;
        }
        default: return -1;
        }
        if (rc) return -1;
        off += n;
    }
    memmove(c->buf, c->buf + off, c->len - off);
    c->len -= off;
    return 0;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    int port = 0;
    double max_seconds = 600;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--max-seconds")) max_seconds = atof(argv[i + 1]);
    }
    if (max_seconds > 3600) max_seconds = 3600;
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&sa, sizeof sa) || listen(ls, 1024)) { perror("listen"); return 1; }
    socklen_t sl = sizeof sa;
    getsockname(ls, (struct sockaddr *)&sa, &sl);
    printf("{\"pid\": %d, \"listeners\": [[\"127.0.0.1\", %d]]}\n", getpid(), ntohs(sa.sin_port));
    fflush(stdout);
    for (int i = 0; i < MAX_CLIENTS; i++) clients[i].fd = -1;
    double t0 = now(), deadline = t0 + max_seconds;
    struct pollfd fds[MAX_CLIENTS + 2];
    int stop = 0;
    while (!stop) {
        double left = deadline - now();
        if (left <= 0) break;
        int n = 0, idx[MAX_CLIENTS];
        fds[n++] = (struct pollfd){.fd = 0, .events = POLLIN};
        fds[n++] = (struct pollfd){.fd = ls, .events = POLLIN};
        for (int i = 0; i < MAX_CLIENTS; i++)
            if (clients[i].fd >= 0) { idx[n - 2] = i; fds[n++] = (struct pollfd){.fd = clients[i].fd, .events = POLLIN}; }
        int ms = left > 1 ? 1000 : (int)(left * 1000) + 1;
        int r = poll(fds, n, ms);
        if (r < 0 && errno != EINTR) break;
        if (r <= 0) continue;
        if (fds[0].revents) {
            char junk[256];
            if (read(0, junk, sizeof junk) <= 0) stop = 1;
        }
        for (int k = 2; k < n; k++) {
            if (!fds[k].revents) continue;
            struct client *c = &clients[idx[k - 2]];
            ssize_t got = read(c->fd, c->buf + c->len, BUF_SIZE - c->len);
            if (got > 0) c->len += (size_t)got;
            if (got <= 0 || handle(c)) {
                close(c->fd);
                c->fd = -1;
                c->len = 0;
            }
        }
        if (fds[1].revents) {
            int fd = accept(ls, NULL, NULL);
            if (fd < 0) continue;
            int slot = -1;
            for (int i = 0; i < MAX_CLIENTS; i++) if (clients[i].fd < 0) { slot = i; break; }
            if (slot < 0) { close(fd); n_dropped++; continue; }
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            clients[slot].fd = fd;
            clients[slot].len = 0;
        }
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"cpu_s\": %.3f, \"wall_s\": %.3f, \"counters\": {\"associations\": %lu, "
           "\"echoes\": %lu, \"releases\": %lu, \"dropped\": %lu}}\n",
           ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6,
           now() - t0, n_assoc, n_echo, n_release, n_dropped);
    return 0;
}
