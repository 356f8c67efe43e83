/*
 * What the agent/ folder exports: logging, allocation wrappers, Go durations,
 * the command line and configuration, the proxy supervisor, and the other
 * subcommands. Every other folder includes this header for the log and the
 * configuration.
 */
#ifndef AGENT_H
#define AGENT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct event_base;

/* Exit codes shared by every subcommand. */
#define EXIT_USAGE	2	/* bad flag, value, variable or file */

/* log.c */
enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR,
	LOG_LEVEL_NONE
};

void	log_init(void);
int	log_set_level(const char *);
void	log_set_json(int);
void	log_set_scope(const char *);
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_error(const char *, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
int	log_format_time(char *, size_t);

/* xmalloc.c: allocation wrappers that never return NULL. */
void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xrealloc(void *, size_t);
char	*xstrdup(const char *);
int	 xasprintf(char **, const char *, ...)
	    __attribute__((format(printf, 2, 3)));

/* duration.c: Go's time.ParseDuration, to and from nanoseconds. */
int	duration_parse(const char *, int64_t *, char *, size_t);
void	duration_format(int64_t, char *, size_t);

#endif
