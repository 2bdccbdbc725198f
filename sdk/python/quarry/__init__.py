"""Python binding of libquarry, the Quarry client SDK (ctypes, standard library only).

    import quarry
    from array import array

    with quarry.Client("tcp://127.0.0.1:5555", "alice", timeout_ms=5000) as c:
        job_id, reserved, dup = c.gemm_submit(2, 2, 2, [1, 2, 3, 4], [5, 6, 7, 8],
                                              max_price=1000)
        info = c.wait(job_id, 60000, on_event=lambda j: print(j.state, j.progress))
        C = c.result(job_id)          # array('f') of m*n floats

The calls are those of sdk/quarry.h (see sdk/python/README.md).  Every
non-zero quarry_err_t becomes a QuarryError subclass carrying .code, .name and
.message (the text of quarry_client_last_error).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import enum
import glob
import operator
import os
import threading
from array import array
from ctypes import (CFUNCTYPE, POINTER, Structure, byref, c_bool, c_char, c_char_p, c_double,
                    c_float, c_int, c_int32, c_int64, c_size_t, c_uint32, c_uint64, c_void_p)
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, List, Optional, Tuple, Union

__all__ = [
    "Client", "Library", "load_library", "LibraryNotFoundError",
    "JobInfo", "WorkerInfo", "Balance", "KindStat", "OperatorStat", "Dash",
    "ErrorCode", "JobState", "strerror", "version", "keygen",
    "job_state_name", "job_state_parse", "job_state_final", "job_state_code",
    "DEFAULT_ENDPOINT", "DEFAULT_TIMEOUT_MS", "GEMM_MAX_DIM",
    "QuarryError", "InvalidArgument", "ProtocolError", "UnknownKind", "TooBig",
    "InsufficientFunds", "NotFound", "DatabaseError", "StateError", "Timeout",
    "OutOfMemory", "IOFailure", "VerifyFailed", "JobFailed", "JobCancelled",
    "JobExpired", "JobRejected", "PriceRefused", "NotReady", "PermissionDenied",
    "ComputeFailed", "Unavailable",
]

__version__ = "0.1.0"

# ---------------------------------------------------------------------------
# Constants of sdk/quarry.h

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555"
DEFAULT_TIMEOUT_MS = 5000
GEMM_MAX_DIM = 65536


class ErrorCode(enum.IntEnum):
    """quarry_err_t (append-only; the numbers travel on the wire)."""
    OK = 0
    EINVAL = 1
    EPROTO = 2
    EKIND = 3
    ETOOBIG = 4
    EFUNDS = 5
    ENOTFOUND = 6
    EDB = 7
    ESTATE = 8
    ETIMEOUT = 9
    ENOMEM = 10
    EIO = 11
    EVERIFY = 12
    ECANCELLED = 13
    EEXPIRED = 14
    EFAILED = 15
    EPRICE = 16
    ENOTREADY = 17
    EPERM = 18
    ECOMPUTE = 19
    EUNAVAIL = 20
    ELIMIT = 21


class JobState(enum.IntEnum):
    """quarry_job_state_t."""
    UNKNOWN = -1
    SUBMITTED = 0
    QUEUED = 1
    ASSIGNED = 2
    RUNNING = 3
    DONE = 4
    VERIFIED = 5
    SETTLED = 6
    MIRRORED = 7
    REJECTED = 8
    FAILED = 9
    EXPIRED = 10
    CANCELLED = 11


# ---------------------------------------------------------------------------
# C structs, field for field as in sdk/quarry.h

class _JobInfo(Structure):
    _fields_ = [
        ("job_id", c_uint64),
        ("state", c_int),  # quarry_job_state_t
        ("state_name", c_char * 16),
        ("kind", c_char * 32),
        ("attempts", c_uint32),
        ("worker_id", c_uint64),
        ("max_price", c_uint64),
        ("price", c_uint64),
        ("fee", c_uint64),
        ("units", c_uint64),
        ("created_ms", c_int64),
        ("updated_ms", c_int64),
        ("progress", c_uint32),
        ("m", c_uint32),
        ("n", c_uint32),
        ("k", c_uint32),
        ("detail", c_char * 256),
    ]


class _JobOpts(Structure):
    _fields_ = [
        ("max_price", c_uint64),
        ("timeout_ms", c_int64),
        ("need_gpu", c_bool),
        ("min_mem_mb", c_uint64),
        ("priority", c_int32),
        ("max_attempts", c_uint32),
        ("idem_key", c_char_p),
    ]


class _ClientOpts(Structure):
    _fields_ = [
        ("endpoint", c_char_p),
        ("account", c_char_p),
        ("timeout_ms", c_int64),
        ("server_key", c_char_p),
        ("key_file", c_char_p),
        ("err_buf", c_void_p),
        ("err_len", c_size_t),
    ]


class _WorkerInfo(Structure):
    _fields_ = [
        ("worker_id", c_uint64),
        ("name", c_char * 64),
        ("operator_", c_char * 64),
        ("state", c_char * 16),
        ("slots", c_uint32),
        ("busy", c_uint32),
        ("ask_price", c_uint64),
        ("reputation", c_int32),
        ("cpu_cores", c_uint32),
        ("mem_mb", c_uint64),
        ("gpus", c_uint32),
        ("jobs_done", c_uint64),
        ("earned", c_uint64),
    ]


class _Balance(Structure):
    _fields_ = [
        ("account", c_char * 64),
        ("available", c_int64),
        ("reserved", c_int64),
        ("earned", c_int64),
    ]


class _KindStat(Structure):
    _fields_ = [
        ("kind", c_char * 32),
        ("queued", c_uint64),
        ("running", c_uint64),
    ]


class _OperatorStat(Structure):
    _fields_ = [
        ("operator_", c_char * 64),
        ("jobs", c_uint64),
        ("earned", c_int64),
    ]


class _Dash(Structure):
    _fields_ = [
        ("kinds", POINTER(_KindStat)),
        ("nkinds", c_size_t),
        ("workers", c_uint32),
        ("utilisation", c_double),
        ("jobs_per_s", c_double),
        ("p50_ms", c_double),
        ("p99_ms", c_double),
        ("operators", POINTER(_OperatorStat)),
        ("noperators", c_size_t),
        ("settled_total", c_uint64),
        ("ledger_sum", c_int64),
    ]


class _Client(Structure):  # opaque quarry_client_t
    pass


_ClientP = POINTER(_Client)
# typedef int (*quarry_event_fn)(const quarry_job_info_t *info, void *userdata);
_EVENT_FN = CFUNCTYPE(c_int, POINTER(_JobInfo), c_void_p)


# ---------------------------------------------------------------------------
# Python-side records

def _s(b: bytes) -> str:
    return b.decode("utf-8", "replace")


@dataclass
class JobInfo:
    """quarry_job_info_t; state is the broker's state name ("settled", ...)."""
    job_id: int
    state: str
    state_code: JobState
    kind: str
    attempts: int
    worker_id: int
    max_price: int
    price: int
    fee: int
    units: int
    created_ms: int
    updated_ms: int
    progress: int  # per mille, 0..1000
    m: int
    n: int
    k: int
    detail: str

    @property
    def final(self) -> bool:
        """True for states a job never leaves (settled, mirrored, side exits)."""
        return self.state_code in _FINAL_STATES

    @classmethod
    def _from_c(cls, j: _JobInfo) -> "JobInfo":
        try:
            code = JobState(j.state)
        except ValueError:
            code = JobState.UNKNOWN
        return cls(job_id=j.job_id, state=_s(j.state_name), state_code=code, kind=_s(j.kind),
                   attempts=j.attempts, worker_id=j.worker_id, max_price=j.max_price,
                   price=j.price, fee=j.fee, units=j.units, created_ms=j.created_ms,
                   updated_ms=j.updated_ms, progress=j.progress, m=j.m, n=j.n, k=j.k,
                   detail=_s(j.detail))


_FINAL_STATES = frozenset({JobState.SETTLED, JobState.MIRRORED, JobState.REJECTED,
                           JobState.FAILED, JobState.EXPIRED, JobState.CANCELLED})


@dataclass
class WorkerInfo:
    """quarry_worker_info_t (C's operator_ is called operator here)."""
    worker_id: int
    name: str
    operator: str
    state: str
    slots: int
    busy: int
    ask_price: int
    reputation: int
    cpu_cores: int
    mem_mb: int
    gpus: int
    jobs_done: int
    earned: int

    @classmethod
    def _from_c(cls, w: _WorkerInfo) -> "WorkerInfo":
        return cls(worker_id=w.worker_id, name=_s(w.name), operator=_s(w.operator_),
                   state=_s(w.state), slots=w.slots, busy=w.busy, ask_price=w.ask_price,
                   reputation=w.reputation, cpu_cores=w.cpu_cores, mem_mb=w.mem_mb,
                   gpus=w.gpus, jobs_done=w.jobs_done, earned=w.earned)


@dataclass
class Balance:
    """quarry_balance_t, base units."""
    account: str
    available: int
    reserved: int
    earned: int

    @classmethod
    def _from_c(cls, b: _Balance) -> "Balance":
        return cls(account=_s(b.account), available=b.available, reserved=b.reserved,
                   earned=b.earned)


@dataclass
class KindStat:
    kind: str
    queued: int
    running: int


@dataclass
class OperatorStat:
    operator: str
    jobs: int
    earned: int


@dataclass
class Dash:
    """quarry_dash_t, copied out of the library's allocation."""
    kinds: List[KindStat] = field(default_factory=list)
    workers: int = 0
    utilisation: float = 0.0
    jobs_per_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    operators: List[OperatorStat] = field(default_factory=list)
    settled_total: int = 0
    ledger_sum: int = 0


# ---------------------------------------------------------------------------
# Errors

class QuarryError(Exception):
    """A non-zero quarry_err_t.

    code    -- the numeric code (ErrorCode when known, else int)
    name    -- "QUARRY_EFUNDS", ...
    message -- quarry_client_last_error() after the failed call (the broker's
               message when it refused the request), else quarry_strerror(code)
    info    -- JobInfo of the job's last known state for wait/watch outcomes, else None
    """

    code: int = -1  # overridden per subclass

    def __init__(self, message: str = "", code: Optional[int] = None,
                 info: Optional[JobInfo] = None):
        if code is None:
            code = type(self).code
        try:
            code = ErrorCode(code)
            name = "QUARRY_" + code.name
        except ValueError:
            name = "QUARRY_E%d" % code
        self.code = code
        self.name = name
        self.message = message
        self.info = info
        super().__init__(message)

    def __str__(self) -> str:
        return "%s: %s" % (self.name, self.message) if self.message else self.name


class InvalidArgument(QuarryError):
    """QUARRY_EINVAL: malformed request or argument."""
    code = ErrorCode.EINVAL


class ProtocolError(QuarryError):
    """QUARRY_EPROTO: bad frame, wrong protocol or version."""
    code = ErrorCode.EPROTO


class UnknownKind(QuarryError):
    """QUARRY_EKIND: unknown job kind."""
    code = ErrorCode.EKIND


class TooBig(QuarryError):
    """QUARRY_ETOOBIG: input over the size limit (or a result buffer too small)."""
    code = ErrorCode.ETOOBIG


class InsufficientFunds(QuarryError):
    """QUARRY_EFUNDS: balance short of the job's maximum price."""
    code = ErrorCode.EFUNDS


class NotFound(QuarryError):
    """QUARRY_ENOTFOUND: no such job, account or worker."""
    code = ErrorCode.ENOTFOUND


class DatabaseError(QuarryError):
    """QUARRY_EDB: the broker's database is unavailable or failed."""
    code = ErrorCode.EDB


class StateError(QuarryError):
    """QUARRY_ESTATE: not allowed in the job's state (e.g. cancel of a final job)."""
    code = ErrorCode.ESTATE


class Timeout(QuarryError):
    """QUARRY_ETIMEOUT: job not final within the wait's timeout (.info = last state)."""
    code = ErrorCode.ETIMEOUT


class OutOfMemory(QuarryError):
    """QUARRY_ENOMEM."""
    code = ErrorCode.ENOMEM


class IOFailure(QuarryError):
    """QUARRY_EIO: socket or file I/O error."""
    code = ErrorCode.EIO


class VerifyFailed(QuarryError):
    """QUARRY_EVERIFY: result failed verification."""
    code = ErrorCode.EVERIFY


class JobFailed(QuarryError):
    """QUARRY_EFAILED: the job ended badly.  Base of JobCancelled, JobExpired
    and JobRejected, so `except JobFailed` catches every bad job outcome.
    .info holds the job's final state when raised by wait()."""
    code = ErrorCode.EFAILED


class JobCancelled(JobFailed):
    """QUARRY_ECANCELLED: the job was cancelled."""
    code = ErrorCode.ECANCELLED


class JobExpired(JobFailed):
    """QUARRY_EEXPIRED: the job passed its deadline."""
    code = ErrorCode.EEXPIRED


class JobRejected(JobFailed, InvalidArgument):
    """QUARRY_EINVAL returned by wait() for a job that ended 'rejected'."""
    code = ErrorCode.EINVAL


class PriceRefused(QuarryError):
    """QUARRY_EPRICE: no worker can run the job under its price cap."""
    code = ErrorCode.EPRICE


class NotReady(QuarryError):
    """QUARRY_ENOTREADY: result not available yet."""
    code = ErrorCode.ENOTREADY


class PermissionDenied(QuarryError):
    """QUARRY_EPERM: not allowed for this caller."""
    code = ErrorCode.EPERM


class ComputeFailed(QuarryError):
    """QUARRY_ECOMPUTE: compute failed on the worker."""
    code = ErrorCode.ECOMPUTE


class Unavailable(QuarryError):
    """QUARRY_EUNAVAIL: broker not reachable or did not answer in time."""
    code = ErrorCode.EUNAVAIL


class LimitExceeded(QuarryError):
    """QUARRY_ELIMIT: the account's submit rate limit or queued-job quota."""
    code = ErrorCode.ELIMIT


_ERRORS = {cls.code: cls for cls in (
    InvalidArgument, ProtocolError, UnknownKind, TooBig, InsufficientFunds, NotFound,
    DatabaseError, StateError, Timeout, OutOfMemory, IOFailure, VerifyFailed, JobCancelled,
    JobExpired, JobFailed, PriceRefused, NotReady, PermissionDenied, ComputeFailed, Unavailable,
    LimitExceeded)}


def _error(code: int, message: str, info: Optional[JobInfo] = None) -> QuarryError:
    """The exception for code; a job outcome of wait() gets its outcome class."""
    if (info is not None and code == ErrorCode.EINVAL and info.state_code == JobState.REJECTED):
        return JobRejected(message, code, info)
    return _ERRORS.get(code, QuarryError)(message, code, info)


class LibraryNotFoundError(OSError):
    """libquarry.so could not be loaded; .tried lists (candidate, reason) pairs."""

    def __init__(self, tried: List[Tuple[str, str]]):
        self.tried = tried
        lines = "\n".join("  %s: %s" % t for t in tried) or "  (no candidates)"
        super().__init__(
            "libquarry not found; tried:\n%s\nBuild it (cmake --build BUILD --target quarry) "
            "and pass lib=PATH or set QUARRY_LIB=/path/to/libquarry.so" % lines)

    def __str__(self) -> str:
        return self.args[0]


# ---------------------------------------------------------------------------
# Finding and loading the library

_REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def _candidates(path: Optional[str]) -> Tuple[List[str], List[Tuple[str, str]]]:
    """(paths to try in order, [(what, why)] of sources that gave nothing)."""
    if path:
        return [os.fspath(path)], []
    env = os.environ.get("QUARRY_LIB")
    if env:
        return [env], []
    out: List[str] = []
    notes: List[Tuple[str, str]] = []
    found = ctypes.util.find_library("quarry")
    if found:
        out.append(found)
    else:
        notes.append(('ctypes.util.find_library("quarry")', "nothing found"))
    pattern = os.path.join(_REPO_ROOT, "build*", "sdk", "libquarry.so")
    builds = sorted(glob.glob(pattern), key=lambda p: os.path.getmtime(p), reverse=True)
    if builds:
        out.extend(builds)  # newest build first
    else:
        notes.append((pattern, "no such file"))
    return out, notes


class Library:
    """A loaded libquarry with every prototype declared."""

    def __init__(self, path: Optional[str] = None):
        paths, tried = _candidates(path)
        cdll = None
        for p in paths:
            try:
                cdll = ctypes.CDLL(p)
                cdll.quarry_version  # a libquarry at all?
                self.path = p
                break
            except (OSError, AttributeError) as e:
                tried.append((p, str(e)))
                cdll = None
        if cdll is None:
            raise LibraryNotFoundError(tried)
        self.cdll = cdll
        self._declare(cdll)

    @staticmethod
    def _declare(L: ctypes.CDLL) -> None:
        def fn(name: str, restype: Any, *argtypes: Any) -> None:
            f = getattr(L, name)
            f.restype = restype
            f.argtypes = list(argtypes)

        E = c_int  # quarry_err_t
        P = _ClientP
        JI = POINTER(_JobInfo)
        fn("quarry_strerror", c_char_p, c_int)
        fn("quarry_version", c_char_p)
        fn("quarry_job_state_name", c_char_p, c_int)
        fn("quarry_job_state_parse", c_int, c_char_p)
        fn("quarry_job_state_final", c_bool, c_int)
        fn("quarry_job_state_code", E, c_int)
        fn("quarry_job_opts_init", None, POINTER(_JobOpts))
        fn("quarry_client_new", E, c_char_p, c_char_p, c_int64, POINTER(P))
        fn("quarry_client_opts_init", None, POINTER(_ClientOpts))
        fn("quarry_client_new_opts", E, POINTER(_ClientOpts), POINTER(P))
        fn("quarry_admin_key", E, P, c_char_p, c_char_p, c_char_p)
        fn("quarry_keygen", E, c_char_p, c_void_p)
        fn("quarry_client_destroy", None, POINTER(P))
        fn("quarry_client_set_timeout", E, P, c_int64)
        fn("quarry_client_last_error", c_char_p, P)
        fn("quarry_client_account_id", c_uint64, P)
        fn("quarry_gemm_submit", E, P, c_uint32, c_uint32, c_uint32, POINTER(c_float),
           POINTER(c_float), POINTER(_JobOpts), POINTER(c_uint64), POINTER(c_uint64),
           POINTER(c_bool))
        fn("quarry_upload", E, P, c_char_p, c_void_p, POINTER(c_uint64))
        fn("quarry_infer_submit", E, P, c_char_p, c_char_p, c_uint32, POINTER(c_float),
           c_size_t, POINTER(_JobOpts), POINTER(c_uint64), POINTER(c_uint64), POINTER(c_bool))
        fn("quarry_zk_submit", E, P, c_char_p, c_void_p, c_size_t, POINTER(_JobOpts),
           POINTER(c_uint64), POINTER(c_uint64), POINTER(c_bool))
        fn("quarry_job_result_bytes", E, P, c_uint64, POINTER(c_void_p), POINTER(c_size_t), JI)
        fn("quarry_job_status", E, P, c_uint64, JI)
        fn("quarry_job_watch", E, P, c_uint64, c_int64, _EVENT_FN, c_void_p, JI)
        fn("quarry_job_wait", E, P, c_uint64, c_int64, _EVENT_FN, c_void_p, JI)
        fn("quarry_job_result", E, P, c_uint64, POINTER(c_float), c_size_t, POINTER(c_size_t),
           JI)
        fn("quarry_job_result_alloc", E, P, c_uint64, POINTER(POINTER(c_float)),
           POINTER(c_size_t), JI)
        fn("quarry_job_cancel", E, P, c_uint64, JI)
        fn("quarry_job_list", E, P, c_char_p, c_uint32, c_bool, POINTER(JI), POINTER(c_size_t))
        fn("quarry_job_list_free", None, POINTER(JI))
        fn("quarry_workers", E, P, POINTER(POINTER(_WorkerInfo)), POINTER(c_size_t))
        fn("quarry_workers_free", None, POINTER(POINTER(_WorkerInfo)))
        fn("quarry_balance", E, P, c_char_p, POINTER(_Balance))
        fn("quarry_deposit", E, P, c_char_p, c_uint64, POINTER(_Balance))
        fn("quarry_dash", E, P, POINTER(POINTER(_Dash)))
        fn("quarry_dash_free", None, POINTER(POINTER(_Dash)))
        fn("quarry_free", None, c_void_p)

    def __repr__(self) -> str:
        return "<quarry.Library %s>" % self.path

    # Thread-safe helpers without a client.
    def strerror(self, code: int) -> str:
        return _s(self.cdll.quarry_strerror(int(code)))

    def version(self) -> str:
        return _s(self.cdll.quarry_version())

    def keygen(self, prefix: str) -> str:
        """quarry_keygen: writes PREFIX.key (0600) and PREFIX.pub; returns the public key."""
        if not prefix:
            raise InvalidArgument("keygen needs a file prefix")
        pub = ctypes.create_string_buffer(41)
        rc = self.cdll.quarry_keygen(os.fsencode(prefix), pub)
        if rc != 0:
            raise _error(rc, "cannot write %s.key / %s.pub (%s; an existing %s.key is never "
                         "overwritten)" % (prefix, prefix, self.strerror(rc), prefix))
        return _s(pub.value)


_libs: dict = {}
_libs_lock = threading.Lock()


def load_library(path: Optional[str] = None) -> Library:
    """Loads libquarry (cached per explicit path / QUARRY_LIB value).

    Order: path, else $QUARRY_LIB, else ctypes.util.find_library("quarry"),
    else <repo>/build*/sdk/libquarry.so (newest first).  An explicit path or
    QUARRY_LIB is used alone, never replaced by a fallback.  Raises
    LibraryNotFoundError naming everything tried.
    """
    key = (os.fspath(path) if path else None, os.environ.get("QUARRY_LIB"))
    with _libs_lock:
        lib = _libs.get(key)
        if lib is None:
            lib = _libs[key] = Library(path)
        return lib


def _lib(lib: Union[None, str, "os.PathLike[str]", Library]) -> Library:
    return lib if isinstance(lib, Library) else load_library(lib)


def strerror(code: int, lib: Union[None, str, Library] = None) -> str:
    """quarry_strerror: generic text of an error code."""
    return _lib(lib).strerror(code)


def version(lib: Union[None, str, Library] = None) -> str:
    """quarry_version: the library's "MAJOR.MINOR.PATCH"."""
    return _lib(lib).version()


def job_state_name(state: int, lib: Union[None, str, Library] = None) -> str:
    return _s(_lib(lib).cdll.quarry_job_state_name(int(state)))


def job_state_parse(name: str, lib: Union[None, str, Library] = None) -> JobState:
    v = _lib(lib).cdll.quarry_job_state_parse(name.encode())
    try:
        return JobState(v)
    except ValueError:
        return JobState.UNKNOWN


def job_state_final(state: int, lib: Union[None, str, Library] = None) -> bool:
    return bool(_lib(lib).cdll.quarry_job_state_final(int(state)))


def job_state_code(state: int, lib: Union[None, str, Library] = None) -> ErrorCode:
    return ErrorCode(_lib(lib).cdll.quarry_job_state_code(int(state)))


# ---------------------------------------------------------------------------
# Buffers

_U32 = 0xFFFFFFFF


def _floats(name: str, data: Any, count: int, check: bool) -> Tuple[Any, Any]:
    """(ctypes float array pointing at data's floats, object keeping it alive).

    data: any buffer of float32 (array('f'), a numpy float32 array, a
    memoryview with format 'f') or of raw bytes (bytes/bytearray: exactly
    count*4 of them), or an iterable of numbers, which is packed.  A writable
    buffer is used in place; a read-only one is copied."""
    if isinstance(data, (str,)):
        raise TypeError("%s: expected float32 data, got str" % name)
    try:
        mv = memoryview(data)
    except TypeError:
        try:
            mv = memoryview(array("f", data))
        except TypeError as e:
            raise TypeError("%s: expected a float32 buffer or a sequence of numbers (%s)"
                            % (name, e)) from None
    if mv.format not in ("f", "<f", "=f", "@f") and mv.format not in ("B", "b", "c"):
        raise TypeError("%s: buffer of format %r; need float32 ('f') or raw bytes"
                        % (name, mv.format))
    if mv.format not in ("B", "b", "c") and mv.itemsize != 4:
        raise TypeError("%s: items of %d bytes; need 4-byte floats" % (name, mv.itemsize))
    if not mv.c_contiguous:
        raise ValueError("%s: buffer is not C-contiguous" % name)
    try:
        raw = mv.cast("B") if mv.ndim != 1 or mv.format != "B" else mv
    except TypeError:  # e.g. an explicit '<f' format: copy the bytes out
        raw = memoryview(mv.tobytes())
    if check and raw.nbytes != count * 4:
        raise InvalidArgument("%s holds %d bytes (%g floats); the shape needs %d floats"
                              % (name, raw.nbytes, raw.nbytes / 4, count))
    n = raw.nbytes // 4
    ctype = c_float * max(n, 1)
    if n == 0:
        return ctype(), None
    if raw.readonly:
        return ctype.from_buffer_copy(raw), None
    return ctype.from_buffer(raw), raw


# ---------------------------------------------------------------------------
# Client

class Client:
    """One connection to a broker bound to one account (quarry_client_t).

    endpoint   -- broker client endpoint (None = DEFAULT_ENDPOINT)
    account    -- account name (None or "" = "default")
    timeout_ms -- HELLO and per-request timeout (<= 0 = DEFAULT_TIMEOUT_MS)
    lib        -- a Library, a path to libquarry.so, or None (see load_library)
    server_key -- the broker's CurveZMQ public key: 40-character Z85 text or a
                  file holding it (BROKER.pub); None = plain text (a broker in
                  --insecure mode).  The environment is not read.
    key_file   -- this client's secret key file (PREFIX.key, mode 0600, see
                  keygen); None with server_key = a throwaway key pair
                  (admitted only by a broker in --open-registration mode)

    Raises Unavailable when the broker does not answer in time (with CURVE:
    broker unreachable, or your key is not admitted), InvalidArgument for a
    malformed endpoint or bad key settings, or the broker's refusal.  Use it as a context
    manager or call close().  A client is used by one thread at a time; calls
    are serialised with a lock, and calling the client from inside one of its
    own event callbacks raises RuntimeError.
    """

    def __init__(self, endpoint: Optional[str] = None, account: Optional[str] = None,
                 timeout_ms: int = 0, lib: Union[None, str, Library] = None,
                 server_key: Optional[str] = None, key_file: Optional[str] = None):
        self._lib = _lib(lib)
        self._L = self._lib.cdll
        self._c = _ClientP()
        self._lock = threading.Lock()
        self._owner: Optional[int] = None
        self.endpoint = endpoint if endpoint is not None else DEFAULT_ENDPOINT
        self.account = account if account else "default"
        opts = _ClientOpts()
        self._L.quarry_client_opts_init(byref(opts))
        opts.endpoint = endpoint.encode() if endpoint is not None else None
        opts.account = account.encode() if account is not None else None
        opts.timeout_ms = int(timeout_ms)
        opts.server_key = os.fsencode(server_key) if server_key else None
        opts.key_file = os.fsencode(key_file) if key_file else None
        why = ctypes.create_string_buffer(512)
        opts.err_buf = ctypes.cast(why, c_void_p)
        opts.err_len = len(why)
        rc = self._L.quarry_client_new_opts(byref(opts), byref(self._c))
        if rc != 0:
            self._c = _ClientP()
            reason = _s(why.value) or self._lib.strerror(rc)
            if rc == ErrorCode.EUNAVAIL and server_key:
                reason += " (broker unreachable, or your key is not admitted)"
            raise _error(rc, "%s (endpoint %s, account %s)"
                         % (reason, self.endpoint, self.account))

    # -- lifecycle --------------------------------------------------------

    def close(self) -> None:
        """quarry_client_destroy; idempotent, never blocks."""
        c = getattr(self, "_c", None)
        if c:
            if self._owner == threading.get_ident():
                raise RuntimeError("quarry.Client closed from inside its own event callback")
            with self._lock:
                self._L.quarry_client_destroy(byref(self._c))

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    @property
    def closed(self) -> bool:
        return not self._c

    def __repr__(self) -> str:
        return "<quarry.Client %s account=%s%s>" % (self.endpoint, self.account,
                                                   " closed" if self.closed else "")

    # -- plumbing ---------------------------------------------------------

    def _enter(self) -> _ClientP:
        if self._owner == threading.get_ident():
            raise RuntimeError("quarry.Client called from inside its own event callback")
        self._lock.acquire()
        if not self._c:
            self._lock.release()
            raise ValueError("quarry.Client is closed")
        self._owner = threading.get_ident()
        return self._c

    def _leave(self) -> None:
        self._owner = None
        self._lock.release()

    def _call(self, fname: str, *args: Any) -> None:
        c = self._enter()
        try:
            rc = getattr(self._L, fname)(c, *args)
            if rc != 0:
                raise _error(rc, self._last_error(rc))
        finally:
            self._leave()

    def _last_error(self, rc: int) -> str:
        msg = self._L.quarry_client_last_error(self._c)
        return _s(msg) if msg else self._lib.strerror(rc)

    @property
    def last_error(self) -> str:
        """quarry_client_last_error: text of the last failure ("" after success)."""
        return _s(self._L.quarry_client_last_error(self._c) or b"") if self._c else ""

    @property
    def account_id(self) -> int:
        """quarry_client_account_id: the id the broker gave in its HELLO answer."""
        return self._L.quarry_client_account_id(self._c) if self._c else 0

    def set_timeout(self, timeout_ms: int) -> None:
        """quarry_client_set_timeout: per-request timeout (<= 0 = default)."""
        self._call("quarry_client_set_timeout", int(timeout_ms))

    # -- jobs -------------------------------------------------------------

    def _job_opts(self, max_price: int, timeout_ms: int, need_gpu: bool, min_mem_mb: int,
                  priority: int, max_attempts: int,
                  idem_key: Optional[str]) -> Tuple[_JobOpts, Optional[bytes]]:
        """A quarry_job_opts_t for the submit calls, and the key bytes it
        points at (keep them alive for the call)."""
        opts = _JobOpts()
        self._L.quarry_job_opts_init(byref(opts))
        opts.max_price = int(max_price)
        opts.timeout_ms = int(timeout_ms)
        opts.need_gpu = bool(need_gpu)
        opts.min_mem_mb = int(min_mem_mb)
        opts.priority = int(priority)
        opts.max_attempts = int(max_attempts)
        key = idem_key.encode() if idem_key else None
        opts.idem_key = key
        return opts, key

    def gemm_submit(self, m: int, n: int, k: int, A: Any, B: Any, max_price: int = 0,
                    timeout_ms: int = 0, need_gpu: bool = False, min_mem_mb: int = 0,
                    priority: int = 0, max_attempts: int = 0,
                    idem_key: Optional[str] = None) -> Tuple[int, int, bool]:
        """quarry_gemm_submit: C = A * B, A m x k and B k x n, fp32 row-major.

        A and B: array('f'), bytes/bytearray/memoryview of exactly m*k (k*n)
        floats, a numpy float32 array, or a sequence of numbers (packed).
        Returns (job_id, reserved, duplicate)."""
        dims = []
        for nm, v in (("m", m), ("n", n), ("k", k)):
            if isinstance(v, bool):
                raise TypeError("%s must be an int, not bool" % nm)
            v = operator.index(v)  # int, numpy integers, ...; TypeError for float
            dims.append((nm, v))
            if v < 0:
                raise InvalidArgument("%s = %d is negative" % (nm, v))
            if v > _U32:
                raise TooBig("%s = %d is over QUARRY_GEMM_MAX_DIM (%d)" % (nm, v, GEMM_MAX_DIM))
        # Only a shape the library would accept needs buffers of that size;
        # otherwise it refuses the shape itself (EINVAL / ETOOBIG).
        check = all(0 < v <= GEMM_MAX_DIM for _, v in dims)
        m, n, k = (v for _, v in dims)
        a, keep_a = _floats("A", A, m * k, check)
        b, keep_b = _floats("B", B, k * n, check)
        opts, key = self._job_opts(max_price, timeout_ms, need_gpu, min_mem_mb, priority,
                                   max_attempts, idem_key)
        job_id, reserved, dup = c_uint64(), c_uint64(), c_bool()
        try:
            self._call("quarry_gemm_submit", m, n, k, a, b, byref(opts), byref(job_id),
                       byref(reserved), byref(dup))
        finally:
            del a, b, keep_a, keep_b  # release the exported buffers
        return job_id.value, reserved.value, bool(dup.value)

    def upload(self, path: str) -> Tuple[str, int]:
        """quarry_upload: stores the file (model weights or graph) with the
        broker; returns (sha256 hex, size).  Nothing is sent again for a file
        the broker already holds."""
        sha = ctypes.create_string_buffer(65)
        size = c_uint64()
        self._call("quarry_upload", os.fsencode(path), sha, byref(size))
        return _s(sha.value), size.value

    def infer_submit(self, weights: str, graph: str, rows: int, X: Any, max_price: int = 0,
                     timeout_ms: int = 0, need_gpu: bool = False, priority: int = 0,
                     max_attempts: int = 0,
                     idem_key: Optional[str] = None) -> Tuple[int, int, bool]:
        """quarry_infer_submit: rows input rows (X: float32 buffer or numpy
        array of rows x the model's input width) through the model whose
        weights and graph were uploaded (their sha256 names).  Returns
        (job_id, reserved, duplicate); result(job_id) is the output."""
        if isinstance(rows, bool):
            raise TypeError("rows must be an int, not bool")
        rows = operator.index(rows)
        if rows <= 0 or rows > _U32:
            raise InvalidArgument("rows = %d out of range" % rows)
        x, keep = _floats("X", X, 0, False)
        count = ctypes.sizeof(x) // 4  # an empty X arrives as 1 float: the broker refuses it
        opts, key = self._job_opts(max_price, timeout_ms, need_gpu, 0, priority, max_attempts,
                                   idem_key)
        job_id, reserved, dup = c_uint64(), c_uint64(), c_bool()
        try:
            self._call("quarry_infer_submit", weights.encode(), graph.encode(), rows, x, count,
                       byref(opts), byref(job_id), byref(reserved), byref(dup))
        finally:
            del x, keep
        return job_id.value, reserved.value, bool(dup.value)

    def zk_submit(self, zkey: str, wtns: bytes, max_price: int = 0, timeout_ms: int = 0,
                  priority: int = 0, max_attempts: int = 0,
                  idem_key: Optional[str] = None) -> Tuple[int, int, bool]:
        """quarry_zk_submit: a Groth16 proof of the witness wtns (the bytes of a
        .wtns file) under the proving key uploaded as zkey (its sha256 name).
        Returns (job_id, reserved, duplicate); result_bytes(job_id) is the
        proof (pi_a 64 bytes, pi_b 128, pi_c 64, big-endian) and the public
        signals (32 bytes each)."""
        data = bytes(wtns)
        if not data:
            raise InvalidArgument("the witness is empty")
        opts, key = self._job_opts(max_price, timeout_ms, False, 0, priority, max_attempts,
                                   idem_key)
        buf = ctypes.create_string_buffer(data, len(data))
        job_id, reserved, dup = c_uint64(), c_uint64(), c_bool()
        self._call("quarry_zk_submit", zkey.encode(), buf, len(data), byref(opts),
                   byref(job_id), byref(reserved), byref(dup))
        return job_id.value, reserved.value, bool(dup.value)

    def result_bytes(self, job_id: int) -> bytes:
        """quarry_job_result_bytes: a settled job's result as raw bytes (any kind)."""
        p = c_void_p()
        n = c_size_t()
        info = _JobInfo()
        self._call("quarry_job_result_bytes", int(job_id), byref(p), byref(n), byref(info))
        try:
            return ctypes.string_at(p, n.value) if n.value else b""
        finally:
            self._L.quarry_free(p)

    def status(self, job_id: int) -> JobInfo:
        """quarry_job_status."""
        info = _JobInfo()
        self._call("quarry_job_status", int(job_id), byref(info))
        return JobInfo._from_c(info)

    def _follow(self, fname: str, job_id: int, timeout_ms: int,
                on_event: Optional[Callable[[JobInfo], Any]]) -> JobInfo:
        info = _JobInfo()
        info.state = JobState.UNKNOWN
        raised: List[BaseException] = []

        def trampoline(p: Any, _ud: Any) -> int:
            try:
                return 1 if on_event(JobInfo._from_c(p.contents)) else 0
            except BaseException as e:  # stop, re-raised after the call
                raised.append(e)
                return 1

        cb = _EVENT_FN(trampoline) if on_event is not None else _EVENT_FN()
        c = self._enter()
        try:
            rc = getattr(self._L, fname)(c, int(job_id), int(timeout_ms), cb, None, byref(info))
            msg = self._last_error(rc) if rc != 0 else ""
        finally:
            self._leave()
            # cb stays referenced until here: the C call has returned.
        if raised:
            raise raised[0]
        last = JobInfo._from_c(info) if info.state != JobState.UNKNOWN or info.job_id else None
        if rc != 0:
            raise _error(rc, msg, last)
        assert last is not None
        return last

    def watch(self, job_id: int, timeout_ms: int = -1,
              on_event: Optional[Callable[[JobInfo], Any]] = None) -> JobInfo:
        """quarry_job_watch: calls on_event(JobInfo) with the current state and
        every change until the job is final, on_event returns a true value, or
        timeout_ms passes (< 0 = no limit, 0 = just the current state).
        Returns the last state; raises Timeout (with .info) when time ran out.
        An exception raised by on_event stops the watch and is re-raised."""
        return self._follow("quarry_job_watch", job_id, timeout_ms, on_event)

    def wait(self, job_id: int, timeout_ms: int = -1,
             on_event: Optional[Callable[[JobInfo], Any]] = None) -> JobInfo:
        """quarry_job_wait: watch plus the outcome.  Returns the JobInfo when the
        job settled (or on_event stopped the wait); raises JobFailed /
        JobExpired / JobCancelled / JobRejected (all JobFailed) when it ended
        badly and Timeout when not final in time, each with .info = last state."""
        return self._follow("quarry_job_wait", job_id, timeout_ms, on_event)

    def result_info(self, job_id: int) -> Tuple[array, JobInfo]:
        """quarry_job_result_alloc: (C as array('f') of m*n floats, JobInfo)."""
        p = POINTER(c_float)()
        count = c_size_t()
        info = _JobInfo()
        self._call("quarry_job_result_alloc", int(job_id), byref(p), byref(count), byref(info))
        try:
            out = array("f")
            if count.value:
                out.frombytes(ctypes.string_at(p, count.value * 4))
        finally:
            self._L.quarry_free(p)
        return out, JobInfo._from_c(info)

    def result(self, job_id: int) -> array:
        """quarry_job_result_alloc + quarry_free: C = A * B as array('f') of m*n
        floats, row-major.  Raises NotReady until the job has settled."""
        return self.result_info(job_id)[0]

    def cancel(self, job_id: int) -> JobInfo:
        """quarry_job_cancel: the job's state after the cancel; StateError when
        it is already final."""
        info = _JobInfo()
        self._call("quarry_job_cancel", int(job_id), byref(info))
        return JobInfo._from_c(info)

    def jobs(self, state: Optional[str] = None, limit: int = 0,
             all_accounts: bool = False) -> List[JobInfo]:
        """quarry_job_list: newest first; state None = any (an unknown name is
        InvalidArgument); limit 0 = broker default; all_accounts (admin)."""
        if not 0 <= int(limit) <= _U32:
            raise InvalidArgument("limit %d out of range" % limit)
        p = POINTER(_JobInfo)()
        count = c_size_t()
        self._call("quarry_job_list", state.encode() if state else None, int(limit),
                   bool(all_accounts), byref(p), byref(count))
        try:
            return [JobInfo._from_c(p[i]) for i in range(count.value)]
        finally:
            self._L.quarry_job_list_free(byref(p))

    # -- accounts, workers, dashboard ------------------------------------

    def workers(self) -> List[WorkerInfo]:
        """quarry_workers: the workers the broker knows."""
        p = POINTER(_WorkerInfo)()
        count = c_size_t()
        self._call("quarry_workers", byref(p), byref(count))
        try:
            return [WorkerInfo._from_c(p[i]) for i in range(count.value)]
        finally:
            self._L.quarry_workers_free(byref(p))

    def balance(self, account: Optional[str] = None) -> Balance:
        """quarry_balance: account None or "" = this client's own."""
        out = _Balance()
        self._call("quarry_balance", account.encode() if account else None, byref(out))
        return Balance._from_c(out)

    def deposit(self, account: str, amount: int) -> Balance:
        """quarry_deposit (admin credit): balances after the deposit."""
        if not 0 <= int(amount) <= 0xFFFFFFFFFFFFFFFF:
            raise InvalidArgument("amount %d out of range" % amount)
        out = _Balance()
        self._call("quarry_deposit", account.encode() if account is not None else None,
                   int(amount), byref(out))
        return Balance._from_c(out)

    def admin_key(self, op: str, key: str, account: Optional[str] = None) -> None:
        """quarry_admin_key (admin): op "add-client", "add-operator" or "add-admin"
        binds the public key (Z85 text or a .pub file) to account; "remove"
        forgets it (account not needed)."""
        self._call("quarry_admin_key", op.encode() if op is not None else None,
                   os.fsencode(key) if key is not None else None,
                   account.encode() if account is not None else None)

    def dash(self) -> Dash:
        """quarry_dash + quarry_dash_free: the admin dashboard."""
        p = POINTER(_Dash)()
        self._call("quarry_dash", byref(p))
        try:
            d = p.contents
            return Dash(
                kinds=[KindStat(_s(d.kinds[i].kind), d.kinds[i].queued, d.kinds[i].running)
                       for i in range(d.nkinds)],
                workers=d.workers, utilisation=d.utilisation, jobs_per_s=d.jobs_per_s,
                p50_ms=d.p50_ms, p99_ms=d.p99_ms,
                operators=[OperatorStat(_s(d.operators[i].operator_), d.operators[i].jobs,
                                        d.operators[i].earned)
                           for i in range(d.noperators)],
                settled_total=d.settled_total, ledger_sum=d.ledger_sum)
        finally:
            self._L.quarry_dash_free(byref(p))


def keygen(prefix: str, lib: Union[None, str, Library] = None) -> str:
    """quarry_keygen: writes a CurveZMQ key pair PREFIX.key (secret, mode 0600)
    and PREFIX.pub; returns the public key (Z85).  Refuses to overwrite an
    existing PREFIX.key (IOFailure)."""
    return _lib(lib).keygen(prefix)
