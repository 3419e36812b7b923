"""The service with the garbage collector's automatic collections off (`python -m bench.gc_off`).

Not product code: `bench/tail.py` runs it beside the service to measure what GC pauses add to the
latency tail. With one worker uvicorn serves in this very process, so the setting holds.
"""

import gc

from app.serve import main

if __name__ == "__main__":
    gc.disable()
    raise SystemExit(main())
