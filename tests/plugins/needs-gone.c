/* Links a library the build deletes: loading fails on the dependency, and
 * the loader must say so instead of "file not found". */
#include "minimal.h"
int pp_gone_function(void);
int (*volatile use_gone)(void) = pp_gone_function;
MINIMAL_PLUGIN(.name = "needs-gone");
