"""elfcost: the private dirty memory of an ELF program, predicted before it runs."""

# The cyclic collector's thresholds in elfcost's own processes (the command line, a scan's
# workers). By default the youngest generation is scanned every 700 allocations and the
# whole heap whenever a quarter of it is new: at start-up that is hundreds of scans of the
# classes and functions click, rich and msgspec define and keep, and in a scan worker, whose
# memo of libraries holds hundreds of thousands of objects, each full pass takes ~0.1 s (about
# a tenth of a cold scan's CPU). The analysis makes few reference cycles; they are still
# collected, after 20,000 allocations instead of 700.
COLLECTOR_THRESHOLDS = (20_000, 10, 10)
# The command line's start-up (click, rich, msgspec and elfcost's own modules: some 35,000
# objects that live as long as the process) runs under this threshold, so that no collection
# scans them; the first command then moves them to the permanent generation (gc.freeze) and
# sets COLLECTOR_THRESHOLDS. One collection of them costs ~5 ms, a twentieth of an estimate.
START_UP_THRESHOLD = 100_000
