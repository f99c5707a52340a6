"""The MXNet tests run only in the MXNet environment (see test_mxnet_ssd.py).

That run uses ``--noconftest``, so this file matters only for the main test
run, where mxnet cannot be installed (it needs numpy<1.24): there the module is
left out of collection instead of failing to import.
"""

from __future__ import annotations

import importlib.util

collect_ignore = [] if importlib.util.find_spec("mxnet") else ["test_mxnet_ssd.py"]
