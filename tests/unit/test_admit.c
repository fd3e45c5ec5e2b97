/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of admission: the handshake budgets close the oldest
 * handshake (of the peer, or of all), IPv6 peers are counted per /64,
 * max_connections slots are taken when a handshake completes.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "moat/admit.h"
#include "moat/peercount.h"

#define NCONN 64

/* A stand-in for the connection: the entry embedded, its address. */
struct fake {
	struct admit_entry adm;
	struct sockaddr_storage sa;
	int closed;                     /* 0, or 1 + the admit_cause */
	int order;                      /* when closed, from 1 */
};

static struct fake conns[NCONN];
static int nclosed;

static void
on_close(struct admit_entry *e, enum admit_cause why, void *arg)
{
	struct fake *f = (struct fake *)e;

	cr_assert_eq(arg, conns, "the callback gets admit_new's argument");
	cr_assert_eq(f->closed, 0, "closed once");
	cr_assert_eq(e->state, ADMIT_NONE, "off the lists before the call");
	f->closed = 1 + (int)why;
	f->order = ++nclosed;
}

static void
setup(void)
{
	memset(conns, 0, sizeof(conns));
	nclosed = 0;
}

static void
set_ip(struct fake *f, const char *ip)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&f->sa;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&f->sa;

	memset(&f->sa, 0, sizeof(f->sa));
	if (strchr(ip, ':') == NULL) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(1000 + (f - conns));
		cr_assert_eq(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
	} else {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(1000 + (f - conns));
		cr_assert_eq(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
	}
}

/* conns[i] from ip enters its handshake under lim. */
static void
enter(struct admit *a, int i, const char *ip, const struct admit_limits *lim)
{
	set_ip(&conns[i], ip);
	cr_assert_eq(admit_handshake(a, &conns[i].adm,
	    (struct sockaddr *)&conns[i].sa, lim), 0);
}

#define PER_ADDRESS     (1 + ADMIT_PER_ADDRESS)
#define TOTAL           (1 + ADMIT_TOTAL)

Test(admit, per_address_closes_its_oldest, .init = setup)
{
	struct admit *a = admit_new(on_close, conns);
	struct admit_limits lim = { 100, 3 };

	cr_assert_not_null(a);
	enter(a, 0, "192.0.2.1", &lim);
	enter(a, 1, "192.0.2.9", &lim);         /* another peer */
	enter(a, 2, "192.0.2.1", &lim);
	enter(a, 3, "192.0.2.1", &lim);
	cr_assert_eq(nclosed, 0, "three from one address fit");
	enter(a, 4, "192.0.2.1", &lim);
	cr_assert_eq(conns[0].closed, PER_ADDRESS, "the fourth closes the "
	    "oldest of its address");
	cr_assert_eq(nclosed, 1, "and nothing else");
	cr_assert_eq(conns[4].adm.state, ADMIT_HANDSHAKE, "the newcomer stays");
	enter(a, 5, "192.0.2.1", &lim);
	cr_assert_eq(conns[2].closed, PER_ADDRESS);
	cr_assert_eq(conns[1].closed, 0, "the other peer is never touched");
	cr_assert_eq(admit_handshakes(a), 4);
	admit_leave(a, &conns[0].adm);          /* already gone: no-op */
	cr_assert_eq(admit_handshakes(a), 4);
	admit_leave(a, &conns[1].adm);
	admit_leave(a, &conns[3].adm);
	admit_leave(a, &conns[4].adm);
	admit_leave(a, &conns[5].adm);
	admit_leave(a, &conns[5].adm);          /* twice: no-op */
	cr_assert_eq(admit_handshakes(a), 0);
	admit_free(a);
	admit_free(NULL);
}

Test(admit, leaving_from_the_middle_keeps_the_age_order, .init = setup)
{
	struct admit *a = admit_new(on_close, conns);
	struct admit_limits lim = { 100, 3 };

	enter(a, 0, "198.51.100.1", &lim);
	enter(a, 1, "198.51.100.1", &lim);
	enter(a, 2, "198.51.100.1", &lim);
	admit_leave(a, &conns[1].adm);
	enter(a, 3, "198.51.100.1", &lim);
	cr_assert_eq(nclosed, 0, "a place was free");
	enter(a, 4, "198.51.100.1", &lim);
	enter(a, 5, "198.51.100.1", &lim);
	cr_assert_eq(conns[0].order, 1);
	cr_assert_eq(conns[2].order, 2);
	cr_assert_eq(conns[3].closed, 0);
	/* The oldest of the peer leaving first, then the newest. */
	admit_leave(a, &conns[3].adm);
	admit_leave(a, &conns[5].adm);
	enter(a, 6, "198.51.100.1", &lim);
	enter(a, 7, "198.51.100.1", &lim);
	enter(a, 8, "198.51.100.1", &lim);
	cr_assert_eq(conns[4].order, 3, "the survivor is now the oldest");
	cr_assert_eq(nclosed, 3);
	admit_leave(a, &conns[6].adm);
	admit_leave(a, &conns[7].adm);
	admit_leave(a, &conns[8].adm);
	cr_assert_eq(admit_handshakes(a), 0);
	admit_free(a);
}

Test(admit, total_budget_closes_the_oldest_of_all, .init = setup)
{
	struct admit *a = admit_new(on_close, conns);
	struct admit_limits lim = { 4, 64 };
	char ip[32];
	int i;

	for (i = 0; i < 4; i++) {
		snprintf(ip, sizeof(ip), "203.0.113.%d", i + 1);
		enter(a, i, ip, &lim);
	}
	cr_assert_eq(nclosed, 0);
	enter(a, 4, "203.0.113.200", &lim);
	cr_assert_eq(conns[0].closed, TOTAL, "the oldest of all goes");
	admit_leave(a, &conns[2].adm);
	enter(a, 5, "203.0.113.201", &lim);
	cr_assert_eq(nclosed, 1, "a place was free");
	enter(a, 6, "203.0.113.1", &lim);
	cr_assert_eq(conns[1].closed, TOTAL, "then the next oldest");
	cr_assert_eq(admit_handshakes(a), 4);
	for (i = 3; i <= 6; i++)
		admit_leave(a, &conns[i].adm);
	cr_assert_eq(admit_handshakes(a), 0);
	admit_free(a);
}

Test(admit, per_address_first_then_total, .init = setup)
{
	struct admit *a = admit_new(on_close, conns);
	struct admit_limits lim = { 3, 2 };

	enter(a, 0, "192.0.2.50", &lim);
	enter(a, 1, "192.0.2.1", &lim);
	enter(a, 2, "192.0.2.1", &lim);
	/* Both budgets full: the peer's own oldest pays, only it. */
	enter(a, 3, "192.0.2.1", &lim);
	cr_assert_eq(conns[1].closed, PER_ADDRESS);
	cr_assert_eq(conns[0].closed, 0, "the older peer from elsewhere stays");
	cr_assert_eq(nclosed, 1);
	admit_leave(a, &conns[0].adm);
	admit_leave(a, &conns[2].adm);
	admit_leave(a, &conns[3].adm);
	admit_free(a);
}

Test(admit, ipv6_counts_per_slash64, .init = setup)
{
	struct admit *a = admit_new(on_close, conns);
	struct admit_limits lim = { 100, 2 };

	enter(a, 0, "2001:db8:1:2::1", &lim);
	enter(a, 1, "2001:db8:1:2:ffff:ffff:ffff:fffe", &lim);
	enter(a, 2, "2001:db8:1:3::1", &lim);   /* the next /64 */
	enter(a, 3, "2001:db8:1:2:1234::", &lim);
	cr_assert_eq(conns[0].closed, PER_ADDRESS, "one /64, one budget");
	cr_assert_eq(conns[2].closed, 0, "another /64 has its own");
	enter(a, 4, "::ffff:192.0.2.7", &lim);
	enter(a, 5, "192.0.2.7", &lim);
	enter(a, 6, "::ffff:192.0.2.7", &lim);
	cr_assert_eq(conns[4].closed, PER_ADDRESS, "IPv4-mapped IPv6 is the "
	    "IPv4 address");
	enter(a, 7, "::ffff:192.0.2.8", &lim);
	enter(a, 8, "::ffff:192.0.2.9", &lim);
	cr_assert_eq(nclosed, 2, "IPv4 addresses differ in the low 64 bits");
	for (int i = 1; i <= 8; i++)
		admit_leave(a, &conns[i].adm);
	admit_free(a);
}

Test(admit, peercount_keys_ipv6_by_slash64)
{
	struct peercount *pc = peercount_new();
	struct fake f = { 0 };

	set_ip(&f, "2001:db8::1");
	cr_assert_eq(peercount_add(pc, (struct sockaddr *)&f.sa), 1);
	set_ip(&f, "2001:db8::ffff:2");
	cr_assert_eq(peercount_add(pc, (struct sockaddr *)&f.sa), 2);
	set_ip(&f, "2001:db8:0:1::1");
	cr_assert_eq(peercount_add(pc, (struct sockaddr *)&f.sa), 1);
	set_ip(&f, "::1");
	cr_assert_eq(peercount_add(pc, (struct sockaddr *)&f.sa), 1);
	set_ip(&f, "::2");
	cr_assert_eq(peercount_add(pc, (struct sockaddr *)&f.sa), 2);
	cr_assert_null(peercount_slot(pc, (struct sockaddr *)&f.sa)[0]);
	set_ip(&f, "10.0.0.1");
	cr_assert_null(peercount_slot(pc, (struct sockaddr *)&f.sa));
	peercount_free(pc);
}

Test(admit, connected_slots, .init = setup)
{
	struct admit *a = admit_new(on_close, conns);
	struct admit_limits lim = { 2, 2 };

	enter(a, 0, "192.0.2.1", &lim);
	enter(a, 1, "192.0.2.1", &lim);
	cr_assert_eq(admit_connected(a, &conns[0].adm, 2), 0);
	cr_assert_eq(admit_handshakes(a), 1, "a connected device leaves the "
	    "handshake budget");
	enter(a, 2, "192.0.2.1", &lim);
	cr_assert_eq(nclosed, 0, "its place is free for another handshake");
	cr_assert_eq(admit_connected(a, &conns[1].adm, 2), 0);
	cr_assert_eq(admit_connected(a, &conns[2].adm, 2), -1,
	    "over max_connections");
	cr_assert_eq(conns[2].adm.state, ADMIT_NONE, "counted nowhere");
	cr_assert_eq(admit_connections(a), 2);
	cr_assert_eq(admit_handshakes(a), 0);
	admit_leave(a, &conns[2].adm);
	admit_leave(a, &conns[0].adm);
	admit_leave(a, &conns[0].adm);
	cr_assert_eq(admit_connections(a), 1);
	enter(a, 3, "192.0.2.1", &lim);
	cr_assert_eq(admit_connected(a, &conns[3].adm, 2), 0, "a slot was "
	    "given back");
	admit_leave(a, &conns[1].adm);
	admit_leave(a, &conns[3].adm);
	cr_assert_eq(admit_connections(a), 0);
	cr_assert_eq(nclosed, 0);
	admit_free(a);
}

Test(admit, shared_totals, .init = setup)
{
	_Atomic uint64_t hs = 0, conn = 0;
	struct admit *a = admit_new(on_close, conns);
	struct admit *b = admit_new(on_close, conns);
	struct admit_limits lim = { 3, 64 };

	admit_share(a, &hs, &conn);
	admit_share(b, &hs, &conn);
	enter(a, 0, "192.0.2.1", &lim);
	enter(b, 1, "192.0.2.2", &lim);
	enter(b, 2, "192.0.2.3", &lim);
	cr_assert_eq(hs, 3);
	/* The total is full: a closes its own oldest, not b's older ones. */
	enter(a, 3, "192.0.2.4", &lim);
	cr_assert_eq(conns[0].closed, TOTAL);
	cr_assert_eq(hs, 3);
	/* a's only handshake is the newcomer's: over by one, no more. */
	enter(a, 4, "192.0.2.5", &lim);
	cr_assert_eq(conns[3].closed, TOTAL);
	cr_assert_eq(admit_connected(b, &conns[1].adm, 1), 0);
	cr_assert_eq(admit_connected(a, &conns[4].adm, 1), -1,
	    "max_connections is shared too");
	cr_assert_eq(conn, 1);
	cr_assert_eq(admit_connections(a), 1);
	admit_leave(b, &conns[1].adm);
	admit_leave(b, &conns[2].adm);
	cr_assert_eq(hs, 0);
	cr_assert_eq(conn, 0);
	admit_free(a);
	admit_free(b);
}

Test(admit, many_peers, .init = setup)
{
	static struct fake many[5000];
	struct admit *a = admit_new(on_close, conns);
	struct admit_limits lim = { 100000, 1 };
	char ip[32];
	int i;

	/* More peers than buckets: the table grows, every one is found. */
	for (i = 0; i < 5000; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.%d", i >> 16 & 255,
		    i >> 8 & 255, i & 255);
		memset(&many[i], 0, sizeof(many[i]));
		cr_assert_eq(inet_pton(AF_INET, ip, &((struct sockaddr_in *)
		    &many[i].sa)->sin_addr), 1);
		many[i].sa.ss_family = AF_INET;
		cr_assert_eq(admit_handshake(a, &many[i].adm,
		    (struct sockaddr *)&many[i].sa, &lim), 0);
	}
	cr_assert_eq(nclosed, 0, "one each: nobody closed");
	cr_assert_eq(admit_handshakes(a), 5000);
	for (i = 0; i < 5000; i += 2)
		admit_leave(a, &many[i].adm);
	for (i = 1; i < 5000; i += 2)
		admit_leave(a, &many[i].adm);
	cr_assert_eq(admit_handshakes(a), 0);
	admit_free(a);
}
