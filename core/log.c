#include "log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int pp_log_level = PP_LOG_INFO;

static const char *const level_names[] = { "error", "warning", "info", "debug" };

void pp_vlog(int level, const char *who, const char *fmt, va_list ap)
{
	char line[1024];
	int n;

	if (level > pp_log_level)
		return;
	if (level < PP_LOG_ERROR || level > PP_LOG_DEBUG)
		level = PP_LOG_ERROR;
	n = snprintf(line, sizeof(line), "pktpipe: %s%s%s: ", who ? who : "", who ? ": " : "",
		     level_names[level]);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	/* Messages are one line: fold any newline a caller or a library put in. */
	for (char *p = line; p < line + n; p++)
		if (*p == '\n')
			*p = ' ';
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return; /* nowhere left to report it */
}

void pp_log(int level, const char *who, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pp_vlog(level, who, fmt, ap);
	va_end(ap);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void pp_vlog_limited(struct pp_log_limit *lim, int level, const char *who, const char *fmt,
		     va_list ap)
{
	uint64_t now = mono_ns();
	char msg[900];

	if (now < lim->next_ns) {
		lim->suppressed++;
		return;
	}
	lim->next_ns = now + 1000000000u;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (lim->suppressed)
		pp_log(level, who, "%s (%llu similar suppressed)", msg,
		       (unsigned long long)lim->suppressed);
	else
		pp_log(level, who, "%s", msg);
	lim->suppressed = 0;
}
