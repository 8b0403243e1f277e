"""Many programs at once: directories, root file systems and package archives (archive.py),
each program estimated once and cached across runs (cache.py), on a process pool (run.py).
"""

from elfcost.scan.run import Scan, ScanOptions, ScanResult, scan_cache_dir

__all__ = ["Scan", "ScanOptions", "ScanResult", "scan_cache_dir"]
