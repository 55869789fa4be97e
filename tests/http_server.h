/* A small HTTP/1.1 server on 127.0.0.1 for the download tests, serving the hub's URL layout
 * (/<org>/<name>/resolve/<rev>/<file>) from fixture folders, with a mode that cuts a transfer
 * in the middle, headers a hostile server might send, redirects (a path on this server, or an
 * absolute URL when it holds "://"), and extra static paths. One connection at a time, "Connection:
 * close". */
#ifndef PQ_TEST_HTTP_SERVER_H
#define PQ_TEST_HTTP_SERVER_H

#define TEST_COMMIT "0123456789abcdef0123456789abcdef01234567"

typedef struct test_server test_server;

typedef struct test_route {
    const char *prefix;   /* "/polyq-test/tiny/resolve/main/" or "/flores.tar.gz" */
    const char *dir;      /* folder (prefix ends in '/') or file */
    int cut;              /* send only half of each body, then close */
    const char *redirect; /* if set: answer 302 to redirect + the rest of the path, with
                             X-Linked-Etag "linked-<rest>" as the hub does for LFS files */
    const char *token;    /* if set: 401 unless "Authorization: Bearer <token>" */
    const char *commit;   /* X-Repo-Commit to answer (NULL: TEST_COMMIT), as a hostile server may */
    const char *etag;     /* ETag to answer (NULL: a hash of the path) */
} test_route;

test_server *test_server_start(const test_route *routes, int n_routes);
int test_server_port(const test_server *s);
int test_server_requests(const test_server *s);
void test_server_stop(test_server *s);

#endif
