"""apply: carry out a plan, safely, and find out what really happened.

`core` runs the removals (bounded parallelism, the last-moment checks, the audit
log before and after); `saved` narrows a saved plan to what a fresh plan also
removes; `outcomes` measures the bytes freed and settles removals whose answer
was lost and attempts a killed run left open.
"""
