/* Becoming an unprivileged user once the socket is bound.
 *
 * The order is the one that works: supplementary groups and the group
 * while we may still change them, the user last (the original tool swapped
 * uid and gid). Switching from root to another uid clears the permitted,
 * effective and ambient capabilities; we also empty the bounding set, so
 * that nothing executed later could regain any, and check the result.
 */
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/capability.h>

#include "nflog.h"

/* Decimal digits only, below the "no id" value (uid_t)-1. */
static bool nfl_id_number(const char *text, uint32_t *out)
{
	char *end;
	unsigned long long v;

	if (!*text || text[strspn(text, "0123456789")] != '\0')
		return false;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno || v >= UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

static int nfl_lookup_user(const char *name, struct nfl_ids *ids, bool *have_gid, char *err,
			   size_t errlen)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	uint32_t n;

	if (getpwnam_r(name, &pw, buf, sizeof(buf), &res) == 0 && res)
		goto found;
	if (!nfl_id_number(name, &n)) {
		snprintf(err, errlen, "user '%s' does not exist", name);
		return -EINVAL;
	}
	ids->uid = n;
	/* A bare uid may have no passwd entry; then group must say. */
	if (getpwuid_r(n, &pw, buf, sizeof(buf), &res) == 0 && res)
		goto found;
	return 0;
found:
	ids->uid = pw.pw_uid;
	ids->gid = pw.pw_gid;
	*have_gid = true;
	return 0;
}

static int nfl_lookup_group(const char *name, struct nfl_ids *ids, char *err, size_t errlen)
{
	struct group gr, *res = NULL;
	char buf[4096];
	uint32_t n;

	if (getgrnam_r(name, &gr, buf, sizeof(buf), &res) == 0 && res) {
		ids->gid = gr.gr_gid;
		return 0;
	}
	if (nfl_id_number(name, &n)) {
		ids->gid = n;
		return 0;
	}
	snprintf(err, errlen, "group '%s' does not exist", name);
	return -EINVAL;
}

int nfl_ids_resolve(const char *user, const char *group, struct nfl_ids *ids, char *err,
		    size_t errlen)
{
	bool have_gid = false;
	int rc;

	*ids = (struct nfl_ids){ 0 };
	if (user && *user) {
		rc = nfl_lookup_user(user, ids, &have_gid, err, errlen);
		if (rc < 0)
			return rc;
		if (ids->uid == 0) {
			snprintf(err, errlen, "user '%s' is root, which keeps every capability: "
				 "name an unprivileged user", user);
			return -EINVAL;
		}
		ids->change_uid = true;
	}
	if (group && *group) {
		rc = nfl_lookup_group(group, ids, err, errlen);
		if (rc < 0)
			return rc;
		have_gid = true;
	}
	if (ids->change_uid && !have_gid) {
		snprintf(err, errlen,
			 "user '%s' has no passwd entry to take a group from: set group", user);
		return -EINVAL;
	}
	ids->set = have_gid;
	return 0;
}

/* Needs CAP_SETPCAP, which root has; without it there is nothing to drop
 * that setuid() would not clear anyway, so failures are ignored. */
static void nfl_drop_bounding_set(void)
{
	for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
		prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
}

/* The switch must be for good and leave no capability behind. */
static int nfl_check_dropped(const struct nfl_ids *ids, char *err, size_t errlen)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	uid_t r, e, saved;

	if (getresuid(&r, &e, &saved) < 0 || r != ids->uid || e != ids->uid ||
	    saved != ids->uid || setuid(0) == 0) {
		snprintf(err, errlen, "uid %" PRIu32 " was not taken for good", (uint32_t)ids->uid);
		return -EPERM;
	}
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) < 0) {
		int rc = -errno;

		snprintf(err, errlen, "cannot read our capabilities: %s", strerror(-rc));
		return rc;
	}
	for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; i++) {
		if (data[i].effective | data[i].permitted | data[i].inheritable) {
			snprintf(err, errlen, "capabilities remain after becoming uid %" PRIu32,
				 (uint32_t)ids->uid);
			return -EPERM;
		}
	}
	return 0;
}

int nfl_drop_privileges(const struct nfl_ids *ids, char *err, size_t errlen)
{
	const char *step;
	int rc;

	if (ids->change_uid)
		nfl_drop_bounding_set();
	step = "setgroups";
	if (setgroups(1, &ids->gid) < 0)
		goto fail;
	step = "setgid";
	if (setgid(ids->gid) < 0)
		goto fail;
	step = "setuid";
	if (ids->change_uid && setuid(ids->uid) < 0)
		goto fail;
	return ids->change_uid ? nfl_check_dropped(ids, err, errlen) : 0;
fail:
	rc = -errno;
	snprintf(err, errlen, "cannot drop privileges: %s: %s", step, strerror(-rc));
	return rc;
}
