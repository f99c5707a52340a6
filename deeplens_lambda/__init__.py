"""StoreLens edge agent: detect, track, pick the best crop, publish FaceEvents.

Everything in this package is pure Python (plus numpy/OpenCV/dlib where a
detector needs them) and runs off the device. The DeepLens SDK (``awscam``,
``mo``) and ``greengrasssdk`` are imported only by :mod:`deeplens_lambda.device`,
and only inside its functions, so ``import deeplens_lambda.<anything>`` works on a
laptop, in CI and in the simulator.

The frame loop is :func:`deeplens_lambda.pipeline.process_frame`; the simulator
feeds it from ``cv2.VideoCapture``, the device from ``awscam.getLastFrame()``.
"""

from __future__ import annotations
