/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the per-address connection counters.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "moat/peercount.h"

static struct sockaddr_storage
v4(const char *ip, unsigned short port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	s->sin_family = AF_INET;
	s->sin_port = htons(port);
	cr_assert_eq(inet_pton(AF_INET, ip, &s->sin_addr), 1);
	return (ss);
}

static struct sockaddr_storage
v6(const char *ip, unsigned short port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	s->sin6_family = AF_INET6;
	s->sin6_port = htons(port);
	cr_assert_eq(inet_pton(AF_INET6, ip, &s->sin6_addr), 1);
	return (ss);
}

#define SA(ss) ((const struct sockaddr *)&(ss))

Test(peercount, counts_per_address_not_per_port)
{
	struct peercount *pc = peercount_new();
	struct sockaddr_storage a1 = v4("192.0.2.1", 1000);
	struct sockaddr_storage a2 = v4("192.0.2.1", 2000);
	struct sockaddr_storage b = v4("192.0.2.2", 1000);

	cr_assert_not_null(pc);
	cr_assert_eq(peercount_add(pc, SA(a1)), 1);
	cr_assert_eq(peercount_add(pc, SA(a2)), 2);
	cr_assert_eq(peercount_add(pc, SA(b)), 1);
	peercount_del(pc, SA(a1));
	cr_assert_eq(peercount_add(pc, SA(a1)), 2);
	peercount_del(pc, SA(a1));
	peercount_del(pc, SA(a2));
	/* At zero the entry is gone: counting starts again at 1. */
	cr_assert_eq(peercount_add(pc, SA(a2)), 1);
	peercount_free(pc);
}

Test(peercount, mapped_ipv6_is_the_ipv4_address)
{
	struct peercount *pc = peercount_new();
	struct sockaddr_storage a = v4("198.51.100.7", 1);
	struct sockaddr_storage m = v6("::ffff:198.51.100.7", 2);
	struct sockaddr_storage o = v6("2001:db8::7", 3);

	cr_assert_eq(peercount_add(pc, SA(a)), 1);
	cr_assert_eq(peercount_add(pc, SA(m)), 2);
	cr_assert_eq(peercount_add(pc, SA(o)), 1);
	peercount_free(pc);
}

Test(peercount, many_addresses_and_unbalanced_delete)
{
	struct peercount *pc = peercount_new();
	struct sockaddr_storage s;
	char ip[32];
	int i;

	/* More addresses than buckets: chains work, free frees them all. */
	for (i = 0; i < 5000; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.%d", i >> 16 & 255,
		    i >> 8 & 255, i & 255);
		s = v4(ip, 1);
		cr_assert_eq(peercount_add(pc, SA(s)), 1);
	}
	s = v4("10.0.0.5", 9);
	cr_assert_eq(peercount_add(pc, SA(s)), 2);
	/* Deleting an address never counted does nothing. */
	s = v4("203.0.113.1", 1);
	peercount_del(pc, SA(s));
	cr_assert_eq(peercount_add(pc, SA(s)), 1);
	peercount_free(pc);
	peercount_free(NULL);
}
