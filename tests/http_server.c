/* Test HTTP server (see http_server.h). Bound to 127.0.0.1 on a free port. */
#include "http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/base.h"

struct test_server {
    int fd, port;
    atomic_int stop, requests;
    pthread_t thread;
    const test_route *routes;
    int n_routes;
};

static void send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        c += w;
        n -= (size_t)w;
    }
}

static void reply(int fd, int code, const char *status, const char *commit, const char *etag,
                  const char *body, size_t len, size_t send_len)
{
    char hdr[1024];
    int n = snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\nConnection: close\r\n"
                     "X-Repo-Commit: %s\r\n%s%s%s\r\n",
                     code, status, len, commit ? commit : TEST_COMMIT, etag ? "ETag: \"" : "",
                     etag ? etag : "", etag ? "\"\r\n" : "");
    send_all(fd, hdr, (size_t)n);
    if (body)
        send_all(fd, body, send_len);
}

static void handle(test_server *s, int fd)
{
    char req[4096] = "";
    size_t got = 0;
    while (got < sizeof req - 1 && !strstr(req, "\r\n\r\n")) {
        ssize_t r = recv(fd, req + got, sizeof req - 1 - got, 0);
        if (r <= 0)
            return;
        got += (size_t)r;
        req[got] = 0;
    }
    char method[8], path[2048];
    if (sscanf(req, "%7s %2047s", method, path) != 2)
        return;
    atomic_fetch_add(&s->requests, 1);
    for (int i = 0; i < s->n_routes; i++) {
        const test_route *r = &s->routes[i];
        size_t pl = strlen(r->prefix);
        if (strncmp(path, r->prefix, pl))
            continue;
        if (r->token) {
            char want[256];
            snprintf(want, sizeof want, "Authorization: Bearer %s\r\n", r->token);
            if (!strstr(req, want)) {
                reply(fd, 401, "Unauthorized", NULL, NULL, "token", 5, 5);
                return;
            }
        }
        if (r->redirect) {
            char hdr[4096];
            int n = snprintf(hdr, sizeof hdr,
                             "HTTP/1.1 302 Found\r\nLocation: %s%s\r\nContent-Length: 0\r\n"
                             "Connection: close\r\nX-Repo-Commit: %s\r\n"
                             "X-Linked-Etag: \"linked-%s\"\r\nETag: \"redirect-etag\"\r\n\r\n",
                             r->redirect, strstr(r->redirect, "://") ? "" : path + pl,
                             r->commit ? r->commit : TEST_COMMIT, path + pl);
            send_all(fd, hdr, (size_t)n);
            return;
        }
        char *file = r->prefix[pl - 1] == '/' ? pq_path_join(r->dir, path + pl) : pq_strdup(r->dir);
        char *body = NULL;
        size_t len = 0;
        bool ok = file && !strstr(path, "..") && pq_file_exists(file) &&
                  pq_read_file(file, 1u << 28, &body, &len, NULL) == 0;
        if (ok) {
            char etag[32];
            snprintf(etag, sizeof etag, "%016llx",
                     (unsigned long long)pq_fnv1a(PQ_FNV_OFFSET, path, strlen(path)));
            reply(fd, 200, "OK", r->commit, r->etag ? r->etag : etag, body, len,
                  r->cut && len > 64 ? len / 2 : len);
        }
        free(body);
        free(file);
        if (ok)
            return;
    }
    reply(fd, 404, "Not Found", NULL, NULL, "missing", 7, 7);
}

static void *serve(void *arg)
{
    test_server *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {s->fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        handle(s, c);
        shutdown(c, SHUT_RDWR);
        close(c);
    }
    return NULL;
}

test_server *test_server_start(const test_route *routes, int n_routes)
{
    test_server *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->routes = routes;
    s->n_routes = n_routes;
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof a) || listen(s->fd, 16) ||
        getsockname(s->fd, (struct sockaddr *)&a, &al) ||
        pthread_create(&s->thread, NULL, serve, s)) {
        if (s->fd >= 0)
            close(s->fd);
        free(s);
        return NULL;
    }
    s->port = ntohs(a.sin_port);
    return s;
}

int test_server_port(const test_server *s)
{
    return s->port;
}
int test_server_requests(const test_server *s)
{
    return atomic_load(&s->requests);
}

void test_server_stop(test_server *s)
{
    if (!s)
        return;
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
    close(s->fd);
    free(s);
}
