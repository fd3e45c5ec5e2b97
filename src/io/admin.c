/* SPDX-License-Identifier: MIT */
/*
 * The admin endpoint (admin.h): accepting clients on the control loop,
 * reading one request head each within the size cap and the deadline,
 * answering /healthz, /readyz (with a non-blocking connect to the broker)
 * and /metrics, and closing. The request head is read by src/core/http.c;
 * the metrics are summed from the workers' counters at each read, so the
 * workers never wait for this code.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "moat/admin.h"
#include "moat/backend.h"
#include "moat/http.h"
#include "moat/log.h"
#include "moat/reason.h"
#include "moat/snapshot.h"
#include "moat/tls.h"
#include "moat/worker.h"

#define HTTP_OK                   200
#define HTTP_BAD_REQUEST          400
#define HTTP_NOT_FOUND            404
#define HTTP_METHOD_NOT_ALLOWED   405
#define HTTP_HEADERS_TOO_LARGE    431
#define HTTP_UNAVAILABLE          503
#define HTTP_VERSION_UNSUPPORTED  505

#define TEXT_PLAIN  "text/plain; charset=utf-8"
#define PROM_TEXT   "text/plain; version=0.0.4; charset=utf-8"

struct admin {
	uv_loop_t *loop;
	uv_tcp_t server;
	const struct admin_view *view;
	struct client *clients;
	unsigned nclients;
	int server_open, closing;
	/* /connections: one gathering at a time, over every worker */
	struct client *list_client;     /* waiting for it, or NULL */
	char **list_parts;              /* each worker's answer */
	unsigned char *list_got;        /* which workers answered */
	unsigned list_pending;          /* yet to answer; 0: none asked */
	unsigned list_limit;
	int list_failed;                /* a worker ran out of memory */
};

struct client {
	struct admin *a;
	struct client *prev, *next;
	uv_tcp_t tcp;
	uv_timer_t timer;
	union {
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} probe;                        /* /readyz's connect to the broker */
	uv_connect_t connect;
	uv_write_t write;
	char *out;                      /* the response being written */
	char buf[ADMIN_MAX_REQUEST];
	size_t len;
	int handles;                    /* open handles; freed at 0 */
	int probing, listing, answered, closing;
};

/* A growing response body; on allocation failure it stays failed. */
struct body {
	char *p;
	size_t len, cap;
	int failed;
};

static void
body_add(struct body *b, const char *fmt, ...)
{
	va_list ap;
	size_t need;
	char *np;
	int n;

	if (b->failed)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p != NULL ? b->p + b->len : NULL,
	    b->p != NULL ? b->cap - b->len : 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = 1;
		return;
	}
	if (b->p != NULL && (size_t)n < b->cap - b->len) {
		b->len += (size_t)n;
		return;
	}
	need = b->len + (size_t)n + 1;
	if ((np = realloc(b->p, need * 2)) == NULL) {
		b->failed = 1;
		return;
	}
	b->p = np;
	b->cap = need * 2;
	va_start(ap, fmt);
	(void)vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* --- client lifetime ----------------------------------------------------- */

static void admin_maybe_free(struct admin *a);

static void
on_client_handle_closed(uv_handle_t *h)
{
	struct client *cl = h->data;
	struct admin *a = cl->a;

	if (--cl->handles > 0)
		return;
	if (cl->prev != NULL)
		cl->prev->next = cl->next;
	else
		a->clients = cl->next;
	if (cl->next != NULL)
		cl->next->prev = cl->prev;
	a->nclients--;
	free(cl->out);
	free(cl);
	admin_maybe_free(a);
}

static void
client_close(struct client *cl)
{
	if (cl->closing)
		return;
	cl->closing = 1;
	if (cl->a->list_client == cl)
		cl->a->list_client = NULL;
	uv_close((uv_handle_t *)&cl->tcp, on_client_handle_closed);
	uv_close((uv_handle_t *)&cl->timer, on_client_handle_closed);
	if (cl->probing)
		uv_close((uv_handle_t *)&cl->probe, on_client_handle_closed);
}

/*
 * The client's one timer: the broker probe's deadline while /readyz
 * probes (then the answer gets a deadline of its own), else the request's.
 */
static void respond_text(struct client *cl, int code, const char *text);

static void
on_client_timer(uv_timer_t *t)
{
	struct client *cl = t->data;

	if ((cl->probing || cl->listing) && !cl->answered) {
		if (cl->a->list_client == cl)
			cl->a->list_client = NULL;
		respond_text(cl, HTTP_UNAVAILABLE, cl->probing ? "the broker "
		    "does not answer\n" : "the workers did not answer in "
		    "time\n");
		(void)uv_timer_start(&cl->timer, on_client_timer,
		    ADMIN_DEADLINE_MS, 0);
		return;
	}
	client_close(cl);
}

static void
on_written(uv_write_t *req, int status)
{
	(void)status;
	client_close(req->data);
}

/* Send one whole response and close after it. */
static void
respond(struct client *cl, int code, const char *type, const char *body,
    size_t len)
{
	static const struct { int code; const char *text; } reasons[] = {
		{ HTTP_OK, "OK" },
		{ HTTP_BAD_REQUEST, "Bad Request" },
		{ HTTP_NOT_FOUND, "Not Found" },
		{ HTTP_METHOD_NOT_ALLOWED, "Method Not Allowed" },
		{ HTTP_HEADERS_TOO_LARGE, "Request Header Fields Too Large" },
		{ HTTP_UNAVAILABLE, "Service Unavailable" },
		{ HTTP_VERSION_UNSUPPORTED, "HTTP Version Not Supported" },
	};
	const char *text = "Error";
	uv_buf_t b;
	size_t i, cap;
	int n;

	if (cl->answered || cl->closing)
		return;
	cl->answered = 1;
	(void)uv_read_stop((uv_stream_t *)&cl->tcp);
	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].code == code)
			text = reasons[i].text;
	cap = len + 256;
	if ((cl->out = malloc(cap)) == NULL) {
		client_close(cl);
		return;
	}
	n = snprintf(cl->out, cap, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n"
	    "Cache-Control: no-store\r\n\r\n", code, text, type, len);
	if (n < 0 || (size_t)n + len > cap) {
		client_close(cl);
		return;
	}
	memcpy(cl->out + n, body, len);
	b = uv_buf_init(cl->out, (unsigned)((size_t)n + len));
	cl->write.data = cl;
	if (uv_write(&cl->write, (uv_stream_t *)&cl->tcp, &b, 1,
	    on_written) != 0)
		client_close(cl);
}

static void
respond_text(struct client *cl, int code, const char *text)
{
	respond(cl, code, TEXT_PLAIN, text, strlen(text));
}

/* --- /healthz ------------------------------------------------------------ */

static void
serve_healthz(struct client *cl)
{
	const struct admin_view *v = cl->a->view;
	uint64_t now = uv_hrtime(), beat;
	char msg[128];
	unsigned i;

	for (i = 0; i < v->nworkers; i++) {
		beat = atomic_load(&v->workers[i].beat);
		if (now - beat <= (uint64_t)ADMIN_STALE_MS * 1000000)
			continue;
		snprintf(msg, sizeof(msg), "worker %u has not run its loop "
		    "for %llu ms\n", i,
		    (unsigned long long)((now - beat) / 1000000));
		respond_text(cl, HTTP_UNAVAILABLE, msg);
		return;
	}
	respond_text(cl, HTTP_OK, "ok\n");
}

/* --- /readyz ------------------------------------------------------------- */

static void
on_probe(uv_connect_t *req, int status)
{
	struct client *cl = req->data;

	if (cl->closing)
		return;
	if (status == 0)
		respond_text(cl, HTTP_OK, "ready\n");
	else
		respond_text(cl, HTTP_UNAVAILABLE, "the broker does not "
		    "answer\n");
}

/* Connect to the broker; the answer comes in on_probe, or the probe
 * deadline (the client's timer) says it does not answer. */
static void
serve_readyz(struct client *cl)
{
	const struct admin_view *v = cl->a->view;
	const struct backend_addr *be = &v->snap->backend;
	int r;

	if (v->stopping) {
		respond_text(cl, HTTP_UNAVAILABLE, "draining\n");
		return;
	}
	if (be->is_unix)
		r = uv_pipe_init(cl->a->loop, &cl->probe.pipe, 0);
	else
		r = uv_tcp_init(cl->a->loop, &cl->probe.tcp);
	if (r != 0) {
		respond_text(cl, HTTP_UNAVAILABLE, "cannot probe the broker\n");
		return;
	}
	cl->probe.tcp.data = cl;
	cl->probing = 1;
	cl->handles++;
	cl->connect.data = cl;
	if (be->is_unix)
		uv_pipe_connect(&cl->connect, &cl->probe.pipe, be->path,
		    on_probe);
	else if ((r = uv_tcp_connect(&cl->connect, &cl->probe.tcp,
	    (const struct sockaddr *)&be->sa, on_probe)) != 0) {
		respond_text(cl, HTTP_UNAVAILABLE, "the broker does not "
		    "answer\n");
		return;
	}
	(void)uv_timer_start(&cl->timer, on_client_timer, ADMIN_PROBE_MS, 0);
}

/* --- /metrics ------------------------------------------------------------ */

/* Every counter of every worker, summed. */
struct totals {
	uint64_t open, accepted, refused, up, down, days_sum;
	uint64_t state[CONN_NSTATES];
	uint64_t refused_packets[GUARD_NKINDS], throttled_ms;
	uint64_t closed[CONN_NREASONS];
	uint64_t days[WORKER_NDAYS];
};

static uint64_t
load(const atomic_uint_fast64_t *x)
{
	return (atomic_load_explicit(x, memory_order_relaxed));
}

static void
sum_workers(const struct admin_view *v, struct totals *t)
{
	const struct worker_counters *c;
	unsigned i, j;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < v->nworkers; i++) {
		c = &v->workers[i].count;
		t->open += load(&c->open);
		t->accepted += load(&c->accepted);
		t->refused += load(&c->refused);
		t->up += load(&c->bytes_up);
		t->down += load(&c->bytes_down);
		t->days_sum += load(&c->days_sum);
		for (j = 0; j < CONN_NREASONS; j++)
			t->closed[j] += load(&c->closed[j]);
		for (j = 0; j < CONN_NSTATES; j++)
			t->state[j] += load(&c->state[j]);
		for (j = 0; j < GUARD_NKINDS; j++)
			t->refused_packets[j] += load(&c->refused_packets[j]);
		t->throttled_ms += load(&c->throttled_ms);
		for (j = 0; j < WORKER_NDAYS; j++)
			t->days[j] += load(&c->days_left[j]);
	}
}

static void
family(struct body *b, const char *name, const char *type, const char *help)
{
	body_add(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Which close reasons each by-reason family lists. */
static int
is_handshake_failure(enum conn_reason r)
{
	return (r == CONN_CLOSE_TOO_MANY_HANDSHAKES ||
	    r == CONN_CLOSE_HANDSHAKE_TIMEOUT ||
	    r == CONN_CLOSE_TLS_HANDSHAKE_FAILED);
}

static int
is_connect_refusal(enum conn_reason r)
{
	return (r == CONN_CLOSE_TOO_MANY_CONNECTIONS ||
	    r == CONN_CLOSE_TOO_MANY_PER_IDENTITY ||
	    r == CONN_CLOSE_CONNECT_TIMEOUT ||
	    r == CONN_CLOSE_MQTT_NOT_CONNECT ||
	    r == CONN_CLOSE_MQTT_MALFORMED ||
	    r == CONN_CLOSE_CONNECT_TOO_LARGE ||
	    r == CONN_CLOSE_PROTOCOL_REFUSED ||
	    r == CONN_CLOSE_AUTH_METHOD_REFUSED ||
	    r == CONN_CLOSE_IDENTITY_REFUSED ||
	    r == CONN_CLOSE_CLIENT_ID_REFUSED ||
	    r == CONN_CLOSE_BACKEND_REFUSED);
}

static void
by_reason(struct body *b, const char *name, const char *help,
    const struct totals *t, int (*which)(enum conn_reason))
{
	unsigned r;

	family(b, name, "counter", help);
	for (r = 1; r < CONN_NREASONS; r++)
		if (which == NULL || which((enum conn_reason)r))
			body_add(b, "%s{reason=\"%s\"} %llu\n", name,
			    conn_reason_name((enum conn_reason)r),
			    (unsigned long long)t->closed[r]);
}

static void
metrics_connections(struct body *b, const struct totals *t)
{
	unsigned st;

	family(b, "moat_connections_open", "gauge",
	    "Device connections open now, by state: handshake (TLS), "
	    "await_connect (for the device's CONNECT), connecting (to the "
	    "broker), proxying, draining and closed (being torn down).");
	for (st = 0; st < CONN_NSTATES; st++)
		body_add(b, "moat_connections_open{state=\"%s\"} %llu\n",
		    conn_state_name((enum conn_state)st),
		    (unsigned long long)t->state[st]);
	family(b, "moat_connections_accepted_total", "counter",
	    "Device connections accepted.");
	body_add(b, "moat_connections_accepted_total %llu\n",
	    (unsigned long long)t->accepted);
	family(b, "moat_connections_turned_away_total", "counter",
	    "Connections closed at accept, over a limit, before any "
	    "handshake.");
	body_add(b, "moat_connections_turned_away_total %llu\n",
	    (unsigned long long)t->refused);
	by_reason(b, "moat_connections_closed_total", "Device connections "
	    "closed, by reason.", t, NULL);
	by_reason(b, "moat_handshakes_failed_total", "Connections closed "
	    "during the TLS handshake, by reason.", t, is_handshake_failure);
	by_reason(b, "moat_connect_refused_total", "Connections refused "
	    "after the handshake or at the MQTT CONNECT, by reason.", t,
	    is_connect_refusal);
	family(b, "moat_bytes_total", "counter", "Bytes forwarded: up is "
	    "device to broker, down broker to device.");
	body_add(b, "moat_bytes_total{direction=\"up\"} %llu\n"
	    "moat_bytes_total{direction=\"down\"} %llu\n",
	    (unsigned long long)t->up, (unsigned long long)t->down);
}

/* The guard's refusals and the flood guard's pauses. */
static void
metrics_packets(struct body *b, const struct totals *t)
{
	unsigned k;

	family(b, "moat_packets_refused_total", "counter", "Packets moat "
	    "refused after the CONNECT, by kind: publish and subscribe "
	    "(topic policy; one per refused filter), connect (a second "
	    "CONNECT), auth, malformed, too_large, protocol.");
	for (k = 1; k < GUARD_NKINDS; k++)
		body_add(b, "moat_packets_refused_total{kind=\"%s\"} %llu\n",
		    guard_kind_name((enum guard_kind)k),
		    (unsigned long long)t->refused_packets[k]);
	family(b, "moat_publish_throttled_seconds_total", "counter",
	    "Time devices were not read because they were over a publish "
	    "rate, summed over connections.");
	body_add(b, "moat_publish_throttled_seconds_total %.3f\n",
	    (double)t->throttled_ms / 1000.0);
}

static void
metrics_days_left(struct body *b, const struct totals *t)
{
	/* Buckets are whole days; Prometheus wants seconds. */
	static const uint64_t days[] = {
#define X(n) n,
		WORKER_DAYS_BUCKETS(X)
#undef X
	};
	uint64_t cum = 0;
	unsigned i;

	family(b, "moat_device_certificate_expiry_seconds", "histogram",
	    "Time left on the certificates of connected devices, in whole "
	    "days as of their handshake.");
	for (i = 0; i < WORKER_NDAYS; i++) {
		cum += t->days[i];
		if (i < WORKER_NDAYS - 1)
			body_add(b, "moat_device_certificate_expiry_seconds_bucket"
			    "{le=\"%llu\"} %llu\n", (unsigned long long)
			    (days[i] * 86400), (unsigned long long)cum);
		else
			body_add(b, "moat_device_certificate_expiry_seconds_bucket"
			    "{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
	}
	body_add(b, "moat_device_certificate_expiry_seconds_sum %llu\n"
	    "moat_device_certificate_expiry_seconds_count %llu\n",
	    (unsigned long long)(t->days_sum * 86400), (unsigned long long)cum);
}

static void
metrics_process(struct body *b, const struct admin_view *v)
{
	int64_t now = (int64_t)time(NULL), when;

	family(b, "moat_reloads_total", "counter", "Reloads, by result.");
	body_add(b, "moat_reloads_total{result=\"ok\"} %llu\n"
	    "moat_reloads_total{result=\"failed\"} %llu\n",
	    (unsigned long long)v->reloads_ok,
	    (unsigned long long)v->reloads_failed);
	family(b, "moat_last_reload_success_timestamp_seconds", "gauge",
	    "When the running configuration was loaded (start-up or "
	    "reload).");
	body_add(b, "moat_last_reload_success_timestamp_seconds %lld\n",
	    (long long)v->last_reload_ok);
	if ((when = v->snap->cert_not_after) != 0) {
		family(b, "moat_server_certificate_expiry_seconds", "gauge",
		    "Seconds until the server certificate expires.");
		body_add(b, "moat_server_certificate_expiry_seconds %lld\n",
		    (long long)(when - now));
	}
	if ((when = tls_ctx_crl_next_update(v->snap->tls)) != 0) {
		family(b, "moat_crl_expiry_seconds", "gauge",
		    "Seconds until the CRL's nextUpdate.");
		body_add(b, "moat_crl_expiry_seconds %lld\n",
		    (long long)(when - now));
	}
	family(b, "moat_broker_port_exposed", "gauge", "1 when the broker's "
	    "port also listens off loopback (moat --check).");
	body_add(b, "moat_broker_port_exposed %d\n",
	    v->snap->exposure.count > 0);
	family(b, "moat_build_info", "gauge", "Versions of moat and its "
	    "libraries.");
	body_add(b, "moat_build_info{version=\"%s\",wolfssl=\"%s\","
	    "libuv=\"%s\"} 1\n", PACKAGE_VERSION, tls_library_version(),
	    uv_version_string());
}

static void
serve_metrics(struct client *cl)
{
	const struct admin_view *v = cl->a->view;
	struct body b = { NULL, 0, 0, 0 };
	struct totals t;

	sum_workers(v, &t);
	metrics_connections(&b, &t);
	metrics_packets(&b, &t);
	metrics_days_left(&b, &t);
	metrics_process(&b, v);
	if (b.failed || b.p == NULL)
		respond_text(cl, HTTP_UNAVAILABLE, "out of memory\n");
	else
		respond(cl, HTTP_OK, PROM_TEXT, b.p, b.len);
	free(b.p);
}

/* --- /connections -------------------------------------------------------- */

/* ?limit=N (1..ADMIN_LIST_MAX), or nothing. 0 or -1. */
static int
list_limit(const char *query, unsigned *limit)
{
	static const char key[] = "limit=";
	const char *p;
	unsigned long v = 0;

	*limit = ADMIN_LIST_DEFAULT;
	if (query[0] == '\0')
		return (0);
	if (strncmp(query, key, sizeof(key) - 1) != 0)
		return (-1);
	for (p = query + sizeof(key) - 1; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (unsigned long)(*p - '0');
		if (v > ADMIN_LIST_MAX)
			return (-1);
	}
	if (*p != '\0' || v == 0 || p == query + sizeof(key) - 1)
		return (-1);
	*limit = (unsigned)v;
	return (0);
}

static void
list_reset(struct admin *a)
{
	unsigned i;

	for (i = 0; a->list_parts != NULL && i < a->view->nworkers; i++)
		free(a->list_parts[i]);
	free(a->list_parts);
	free(a->list_got);
	a->list_parts = NULL;
	a->list_got = NULL;
	a->list_pending = 0;
	a->list_failed = 0;
}

/* Every worker answered: one JSON array of at most list_limit objects. */
static void
list_finish(struct admin *a)
{
	struct body b = { NULL, 0, 0, 0 };
	struct client *cl = a->list_client;
	const char *p, *nl;
	unsigned i, n = 0;

	a->list_client = NULL;
	if (cl == NULL || a->list_failed) {
		if (cl != NULL)
			respond_text(cl, HTTP_UNAVAILABLE, "out of memory\n");
		return;
	}
	body_add(&b, "[");
	for (i = 0; i < a->view->nworkers; i++)
		for (p = a->list_parts[i]; p != NULL && n < a->list_limit &&
		    (nl = strchr(p, '\n')) != NULL; p = nl + 1, n++)
			body_add(&b, "%s\n%.*s", n > 0 ? "," : "",
			    (int)(nl - p), p);
	body_add(&b, "%s]\n", n > 0 ? "\n" : "");
	if (b.failed || b.p == NULL)
		respond_text(cl, HTTP_UNAVAILABLE, "out of memory\n");
	else
		respond(cl, HTTP_OK, "application/json", b.p, b.len);
	free(b.p);
}

void
admin_listed(struct admin *a)
{
	const struct admin_view *v;
	unsigned i;
	char *json;

	if (a == NULL || a->list_pending == 0)
		return;
	v = a->view;
	for (i = 0; i < v->nworkers; i++) {
		if (a->list_got[i] || !worker_take_list(&v->workers[i], &json))
			continue;
		a->list_got[i] = 1;
		a->list_parts[i] = json;
		if (json == NULL)
			a->list_failed = 1;
		a->list_pending--;
	}
	if (a->list_pending > 0)
		return;
	list_finish(a);
	list_reset(a);
}

/* Ask every worker; admin_listed() answers once all have replied, or the
 * client's timer says they did not in time. */
static void
serve_connections(struct client *cl, const char *query)
{
	struct admin *a = cl->a;
	unsigned i, n = a->view->nworkers, limit;

	if (list_limit(query, &limit) != 0) {
		respond_text(cl, HTTP_BAD_REQUEST, "?limit= takes a number "
		    "from 1 to 100000\n");
		return;
	}
	if (a->list_pending > 0) {
		respond_text(cl, HTTP_UNAVAILABLE, "busy with another "
		    "/connections; try again\n");
		return;
	}
	if (n == 0) {
		respond(cl, HTTP_OK, "application/json", "[]\n", 3);
		return;
	}
	a->list_parts = calloc(n, sizeof(*a->list_parts));
	a->list_got = calloc(n, sizeof(*a->list_got));
	if (a->list_parts == NULL || a->list_got == NULL) {
		list_reset(a);
		respond_text(cl, HTTP_UNAVAILABLE, "out of memory\n");
		return;
	}
	a->list_limit = limit;
	a->list_pending = n;
	a->list_client = cl;
	cl->listing = 1;
	for (i = 0; i < n; i++)
		worker_post_list(&a->view->workers[i], limit);
	(void)uv_timer_start(&cl->timer, on_client_timer, ADMIN_PROBE_MS, 0);
}

/* --- requests ------------------------------------------------------------ */

static void
dispatch(struct client *cl, const struct http_request *req)
{
	if (strcmp(req->method, "GET") != 0)
		respond_text(cl, HTTP_METHOD_NOT_ALLOWED, "GET only\n");
	else if (strcmp(req->path, "/healthz") == 0)
		serve_healthz(cl);
	else if (strcmp(req->path, "/readyz") == 0)
		serve_readyz(cl);
	else if (strcmp(req->path, "/metrics") == 0)
		serve_metrics(cl);
	else if (strcmp(req->path, "/connections") == 0)
		serve_connections(cl, req->query);
	else
		respond_text(cl, HTTP_NOT_FOUND, "not found; try /healthz, "
		    "/readyz, /metrics or /connections\n");
}

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct client *cl = h->data;

	(void)suggested;
	*buf = uv_buf_init(cl->buf + cl->len,
	    (unsigned)(sizeof(cl->buf) - cl->len));
}

static void
on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct client *cl = s->data;
	struct http_request req;

	(void)buf;
	if (nread < 0) {
		client_close(cl);
		return;
	}
	cl->len += (size_t)nread;
	switch (http_parse_request(cl->buf, cl->len, sizeof(cl->buf), &req)) {
	case HTTP_MORE:
		return;
	case HTTP_DONE:
		dispatch(cl, &req);
		return;
	case HTTP_TOO_LARGE:
		respond_text(cl, HTTP_HEADERS_TOO_LARGE, "request too large\n");
		return;
	case HTTP_BAD_VERSION:
		respond_text(cl, HTTP_VERSION_UNSUPPORTED, "HTTP/1.x only\n");
		return;
	default:
		respond_text(cl, HTTP_BAD_REQUEST, "bad request\n");
		return;
	}
}

/* --- accepting ----------------------------------------------------------- */

static void
on_refused_closed(uv_handle_t *h)
{
	free(h);
}

/* Over ADMIN_MAX_CLIENTS: accept and close at once. */
static void
turn_away(struct admin *a)
{
	uv_tcp_t *t;

	if ((t = malloc(sizeof(*t))) == NULL)
		return;
	if (uv_tcp_init(a->loop, t) != 0) {
		free(t);
		return;
	}
	(void)uv_accept((uv_stream_t *)&a->server, (uv_stream_t *)t);
	uv_close((uv_handle_t *)t, on_refused_closed);
}

static void
on_connection(uv_stream_t *server, int status)
{
	struct admin *a = server->data;
	struct client *cl;

	if (status != 0 || a->closing)
		return;
	if (a->nclients >= ADMIN_MAX_CLIENTS ||
	    (cl = calloc(1, sizeof(*cl))) == NULL) {
		turn_away(a);
		return;
	}
	cl->a = a;
	if (uv_tcp_init(a->loop, &cl->tcp) != 0) {
		free(cl);
		turn_away(a);
		return;
	}
	cl->tcp.data = cl;
	cl->handles = 1;
	if ((cl->next = a->clients) != NULL)
		cl->next->prev = cl;
	a->clients = cl;
	a->nclients++;
	if (uv_timer_init(a->loop, &cl->timer) != 0) {
		cl->closing = 1;
		uv_close((uv_handle_t *)&cl->tcp, on_client_handle_closed);
		return;
	}
	cl->timer.data = cl;
	cl->handles++;
	if (uv_accept(server, (uv_stream_t *)&cl->tcp) != 0 ||
	    uv_read_start((uv_stream_t *)&cl->tcp, on_alloc, on_read) != 0) {
		client_close(cl);
		return;
	}
	(void)uv_timer_start(&cl->timer, on_client_timer, ADMIN_DEADLINE_MS,
	    0);
}

/* --- the endpoint -------------------------------------------------------- */

static void
admin_maybe_free(struct admin *a)
{
	if (!a->closing || a->server_open || a->nclients > 0)
		return;
	/* Answers still on their way stay with their worker (worker_free). */
	list_reset(a);
	free(a);
}

static void
on_server_closed(uv_handle_t *h)
{
	struct admin *a = h->data;

	a->server_open = 0;
	admin_maybe_free(a);
}

struct admin *
admin_start(uv_loop_t *loop, const char *address,
    const struct admin_view *view, char *err, size_t errlen)
{
	struct sockaddr_storage sa;
	struct admin *a;
	char e[256];
	int r;

	err[0] = '\0';
	if (address == NULL || strcmp(address, "off") == 0)
		return (NULL);
	if (backend_parse_listen(address, &sa, e, sizeof(e)) != 0) {
		snprintf(err, errlen, "[admin] address = %s: %s", address, e);
		return (NULL);
	}
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return (NULL);
	}
	a->loop = loop;
	a->view = view;
	if ((r = uv_tcp_init(loop, &a->server)) != 0) {
		free(a);
		snprintf(err, errlen, "[admin] address = %s: %s", address,
		    uv_strerror(r));
		return (NULL);
	}
	a->server.data = a;
	a->server_open = 1;
	if ((r = uv_tcp_bind(&a->server, (const struct sockaddr *)&sa,
	    0)) != 0 || (r = uv_listen((uv_stream_t *)&a->server,
	    ADMIN_MAX_CLIENTS, on_connection)) != 0) {
		snprintf(err, errlen, "[admin] address = %s: cannot listen: %s",
		    address, uv_strerror(r));
		admin_close(a);
		return (NULL);
	}
	log_info("admin endpoint on http://%s/ (/healthz, /readyz, "
	    "/metrics, /connections)", address);
	return (a);
}

void
admin_close(struct admin *a)
{
	struct client *cl, *next;

	if (a == NULL || a->closing)
		return;
	a->closing = 1;
	for (cl = a->clients; cl != NULL; cl = next) {
		next = cl->next;
		client_close(cl);
	}
	uv_close((uv_handle_t *)&a->server, on_server_closed);
}
