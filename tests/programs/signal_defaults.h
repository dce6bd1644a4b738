/* Every catchable signal back to SIG_DFL.  A program that relies on a
 * default action (^C ends the foreground job, SIGTTIN stops a background
 * reader, SIGTERM kills) calls this first: whoever started it may have left
 * signals ignored (a background job has SIGINT and SIGQUIT ignored, nohup
 * ignores SIGHUP), and an ignored disposition survives execve. */
#ifndef SIGNAL_DEFAULTS_H
#define SIGNAL_DEFAULTS_H
#include <signal.h>

static inline void signal_defaults(void) {
    for (int s = 1; s < 32; s++)
        if (s != SIGKILL && s != SIGSTOP) signal(s, SIG_DFL);
}
#endif
