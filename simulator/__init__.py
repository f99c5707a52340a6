"""StoreLens simulator: replay video through the edge pipeline, and build demo data.

* :func:`simulator.replay.replay` runs a video file, RTSP URL or webcam through
  exactly the edge code the camera runs (:mod:`deeplens_lambda.pipeline`), into a
  publisher (in-process ingest, MQTT, ...).
* :func:`simulator.demo.build_demo` fills a backend with eight weeks of demo data.
* ``python -m simulator replay|demo|render|floorplan`` is the command line.
"""

from __future__ import annotations
