"""Python binding for Minnow's C interface (libMinnowC.so), with numpy arrays in and out.

    import minnow
    model = minnow.Model("model.minnow")
    session = minnow.Session(model, max_batch=64)
    outputs = session.run({"x": features})        # dict name -> np.ndarray (copies of the outputs)

    view = session.input(0)                       # zero-copy: the session's input buffer
    view[:8] = features; session.run_batch(8); scores = session.output(0, 8)   # views, no copies

Set MINNOW_LIB to the library's path if it is not at .build/release/libMinnowC.so.
"""
import ctypes
import os

import numpy as np

_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
_lib = None


class MinnowError(RuntimeError):
    pass


# The format's DType codes for the element types a model's inputs and outputs may have.
_DTYPES = {0: np.float32, 3: np.int32, 4: np.int64, 5: np.bool_}


def _library():
    global _lib
    if _lib is None:
        path = os.environ.get("MINNOW_LIB", os.path.join(_ROOT, ".build", "release", "libMinnowC.so"))
        lib = ctypes.CDLL(path)
        P, I32, I64 = ctypes.c_void_p, ctypes.c_int32, ctypes.c_int64
        sigs = {
            "minnow_last_error": (ctypes.c_char_p, []),
            "minnow_model_load": (P, [ctypes.c_char_p]),
            "minnow_model_load_kernels": (P, [ctypes.c_char_p, ctypes.c_char_p]),
            "minnow_model_kernels": (ctypes.c_char_p, [P]),
            "minnow_model_load_bytes": (P, [ctypes.c_char_p, ctypes.c_size_t]),
            "minnow_model_free": (None, [P]),
            "minnow_model_input_count": (I32, [P]),
            "minnow_model_output_count": (I32, [P]),
            "minnow_model_input_name": (ctypes.c_char_p, [P, I32]),
            "minnow_model_output_name": (ctypes.c_char_p, [P, I32]),
            "minnow_model_input_shape": (I32, [P, I32, ctypes.POINTER(I64), I32]),
            "minnow_model_output_shape": (I32, [P, I32, ctypes.POINTER(I64), I32]),
            "minnow_model_max_batch": (I32, [P]),
            "minnow_model_input_dtype": (I32, [P, I32]),
            "minnow_model_output_dtype": (I32, [P, I32]),
            "minnow_session_create": (P, [P, I32]),
            "minnow_session_create_threads": (P, [P, I32, I32]),
            "minnow_session_free": (None, [P]),
            "minnow_session_max_batch": (I32, [P]),
            "minnow_session_input": (ctypes.POINTER(ctypes.c_float), [P, I32]),
            "minnow_session_set_input": (I32, [P, I32, ctypes.POINTER(ctypes.c_float), I64]),
            "minnow_session_run": (I32, [P, I32]),
            "minnow_session_output": (ctypes.POINTER(ctypes.c_float), [P, I32]),
            "minnow_session_input_data": (P, [P, I32]),
            "minnow_session_output_data": (P, [P, I32]),
            "minnow_model_sequence_lengths": (I32, [P, ctypes.POINTER(I64), I32]),
            "minnow_session_set_sequence_length": (I32, [P, I64]),
            "minnow_session_input_shape": (I32, [P, I32, ctypes.POINTER(I64), I32]),
            "minnow_session_output_shape": (I32, [P, I32, ctypes.POINTER(I64), I32]),
        }
        for name, (res, args) in sigs.items():
            f = getattr(lib, name)
            f.restype, f.argtypes = res, args
        _lib = lib
    return _lib


def _error():
    return MinnowError(_library().minnow_last_error().decode("utf-8", "replace"))


class Model:
    """A loaded, verified model (immutable; share it between sessions)."""

    def __init__(self, path=None, data=None, kernels=None):
        """kernels: a kernel table name ("reference", "avx2", "avx512vnni") instead of the CPU's best."""
        lib = _library()
        if data is not None:
            if kernels is not None:
                raise ValueError("kernels= needs a path")
            self._h = lib.minnow_model_load_bytes(bytes(data), len(data))
        elif kernels is not None:
            self._h = lib.minnow_model_load_kernels(os.fsencode(path), kernels.encode())
        else:
            self._h = lib.minnow_model_load(os.fsencode(path))
        if not self._h:
            raise _error()
        self.kernels = lib.minnow_model_kernels(self._h).decode()
        self.inputs = [self._spec(lib.minnow_model_input_name, lib.minnow_model_input_shape, i)
                       for i in range(lib.minnow_model_input_count(self._h))]
        self.outputs = [self._spec(lib.minnow_model_output_name, lib.minnow_model_output_shape, i)
                        for i in range(lib.minnow_model_output_count(self._h))]
        self.max_batch = lib.minnow_model_max_batch(self._h)
        # numpy dtypes, in input / output order (ids of embedding models are int64 or int32).
        self.input_dtypes = [_DTYPES[lib.minnow_model_input_dtype(self._h, i)] for i in range(len(self.inputs))]
        self.output_dtypes = [_DTYPES[lib.minnow_model_output_dtype(self._h, i)] for i in range(len(self.outputs))]
        # Lengths a session can be set to (a model converted with --max-seq); [] when fixed.
        n = lib.minnow_model_sequence_lengths(self._h, None, 0)
        lengths = (ctypes.c_int64 * max(n, 1))()
        lib.minnow_model_sequence_lengths(self._h, lengths, n)
        self.sequence_lengths = list(lengths[:n])

    def _spec(self, name_fn, shape_fn, i):
        dims = (ctypes.c_int64 * 8)()
        rank = shape_fn(self._h, i, dims, 8)
        return name_fn(self._h, i).decode(), tuple(dims[:rank])

    def __del__(self):
        if getattr(self, "_h", None):
            _library().minnow_model_free(self._h)
            self._h = None


class Session:
    """One inference context (one thread at a time). Inputs and outputs keep the model's element
    types (fp32 features, int64/int32 ids, bool masks)."""

    def __init__(self, model, max_batch=0, threads=None):
        """threads: per run (None: the physical cores this process may run on; 1: no pool)."""
        lib = _library()
        self.model = model  # keeps the model alive
        self._h = lib.minnow_session_create_threads(model._h, max_batch, 0 if threads is None else threads)
        if not self._h:
            raise _error()
        self.max_batch = lib.minnow_session_max_batch(self._h)
        self._index = {name: i for i, (name, _) in enumerate(model.inputs)}
        self._output_names = [name for name, _ in model.outputs]
        # Looked up and converted once: run_batch is on every inference's path.
        self._run, self._handle = lib.minnow_session_run, self._h
        self._refresh_views()

    def _refresh_views(self):
        """numpy views of the session's input and output buffers at its current sequence length."""
        lib = _library()

        def shape(fn, i):
            dims = (ctypes.c_int64 * 8)()
            return tuple(dims[:fn(self._h, i, dims, 8)])

        self._inputs = [self._view(lib.minnow_session_input_data(self._h, i), shape(lib.minnow_session_input_shape, i),
                                   self.model.input_dtypes[i]) for i in range(len(self.model.inputs))]
        self._outputs = [self._view(lib.minnow_session_output_data(self._h, i), shape(lib.minnow_session_output_shape, i),
                                    self.model.output_dtypes[i]) for i in range(len(self.model.outputs))]

    def set_sequence_length(self, length):
        """Switches to inputs of `length` tokens (a model converted with --max-seq)."""
        if _library().minnow_session_set_sequence_length(self._h, int(length)) != 0:
            raise _error()
        self._refresh_views()

    def _match_sequence_length(self, arrays):
        """For a model with several sequence lengths: switch to the one the arrays' shapes have."""
        candidates = sorted({d for a in arrays.values() for d in a.shape[1:] if d in self.model.sequence_lengths})
        for length in candidates:
            self.set_sequence_length(length)
            if all(a.shape[1:] == self._inputs[self._index[n]].shape[1:] for n, a in arrays.items() if n in self._index):
                return
        shapes = ", ".join(f"'{n}' {list(a.shape)}" for n, a in arrays.items())
        raise MinnowError(f"input shapes {shapes} match no sequence length the model accepts "
                          f"({self.model.sequence_lengths[0]}...{self.model.sequence_lengths[-1]})")

    def _view(self, ptr, shape, dtype):
        if not ptr:
            raise _error()
        ctype = np.ctypeslib.as_ctypes_type(np.dtype(dtype))
        return np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctype)), shape=(self.max_batch, *shape[1:]))

    def input(self, i):
        """The session's own buffer for input i ([max_batch, ...]): write samples here, no copy."""
        return self._inputs[i]

    def output(self, i, batch):
        """A view of output i for the last run's `batch` samples (valid until the next run)."""
        return self._outputs[i][:batch]

    def run_batch(self, batch):
        if self._run(self._handle, batch) != 0:
            raise _error()

    def run(self, feed):
        """feed: dict name -> array [batch, ...] (or a list in input order). Returns copies of the outputs."""
        items = feed.items() if isinstance(feed, dict) else zip((n for n, _ in self.model.inputs), feed)
        arrays = {name: np.asarray(array) for name, array in items}
        if self.model.sequence_lengths:
            self._match_sequence_length(arrays)
        batch = None
        for name, a in arrays.items():
            index = self._index.get(name)
            if index is None:
                raise MinnowError(f"unknown input '{name}' (model inputs: {', '.join(self._index)})")
            dst = self._inputs[index]
            if a.dtype != dst.dtype and dst.dtype != np.float32 and a.dtype.kind == "f" and not np.array_equal(a, np.round(a)):
                raise MinnowError(f"input '{name}' takes {dst.dtype} ids; found fractional values")
            if a.shape[1:] != dst.shape[1:] or not 1 <= a.shape[0] <= self.max_batch:
                raise MinnowError(f"input '{name}': expected shape [1..{self.max_batch}, {', '.join(map(str, dst.shape[1:]))}], found {list(a.shape)}")
            if batch is not None and a.shape[0] != batch:
                raise MinnowError("inputs have different batch sizes")
            batch = a.shape[0]
            dst[:batch] = a  # copies into the session's buffer, converting the element type if needed
        self.run_batch(batch)
        return {name: out[:batch].copy() for name, out in zip(self._output_names, self._outputs)}

    def __del__(self):
        if getattr(self, "_h", None):
            _library().minnow_session_free(self._h)
            self._h = None
