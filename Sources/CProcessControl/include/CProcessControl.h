// Process control Swift cannot call directly: prctl(2) is variadic.
#ifndef CPROCESSCONTROL_H
#define CPROCESSCONTROL_H

#ifdef __cplusplus
extern "C" {
#endif

/// Asks the kernel to send `signal` to this process when its parent dies (Linux PR_SET_PDEATHSIG).
///
/// Returns 0 on success, -1 with errno set on failure or where the call does not exist (errno ENOSYS).
int tandem_set_parent_death_signal(int signal);

#ifdef __cplusplus
}
#endif

#endif
