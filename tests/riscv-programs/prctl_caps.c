/* prctl's capability options, as setpriv(1) and su use them (found failing with EINVAL in a
 * Debian chroot: `setpriv --reuid=65534 id`): keep-caps, the bounding set, securebits,
 * ambient capabilities. */
#include <stdio.h>
#include <sys/prctl.h>
#include <errno.h>
#include <string.h>

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_IS_SET 1
#endif

static void show(const char *what, long r) {
  printf("%s = %ld%s%s\n", what, r, r < 0 ? " " : "", r < 0 ? strerror(errno) : "");
}

int main(void) {
  show("PR_GET_KEEPCAPS", prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0));
  show("PR_SET_KEEPCAPS 1", prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0));
  show("PR_GET_KEEPCAPS", prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0));
  show("PR_SET_KEEPCAPS 2", prctl(PR_SET_KEEPCAPS, 2, 0, 0, 0));
  show("PR_CAPBSET_READ CAP_CHOWN", prctl(PR_CAPBSET_READ, 0, 0, 0, 0));
  show("PR_CAPBSET_READ 1000", prctl(PR_CAPBSET_READ, 1000, 0, 0, 0));
  show("PR_GET_SECUREBITS", prctl(PR_GET_SECUREBITS, 0, 0, 0, 0));
  show("PR_CAP_AMBIENT IS_SET CAP_CHOWN", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, 0, 0, 0));
  show("prctl 9999", prctl(9999, 0, 0, 0, 0));
  return 0;
}
