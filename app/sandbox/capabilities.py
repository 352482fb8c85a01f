"""What a program may reach: read-only module proxies, per-type attribute allow-lists, builtins."""

from __future__ import annotations

import builtins
import functools
import math
import string
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn, optim

from app.errors import LimitExceeded, PolicyError
from app.sandbox.policy import REFUSED_ATTRIBUTES

PROGRAM_MODULE = "program"  # __name__ of the program: classes it defines carry it as __module__


class ModuleProxy:
    """A read-only view of an allow-listed part of a module."""

    __slots__ = ("_ae_name", "_ae_members")

    def __init__(self, name: str, members: dict[str, Any]) -> None:
        object.__setattr__(self, "_ae_name", name)
        object.__setattr__(self, "_ae_members", members)

    def __getattr__(self, attr: str) -> Any:
        members = object.__getattribute__(self, "_ae_members")
        if attr in members:
            return members[attr]
        name = object.__getattribute__(self, "_ae_name")
        raise PolicyError(f"{name}.{attr} is not available in the explorer")

    def __setattr__(self, attr: str, value: object) -> None:
        name = object.__getattribute__(self, "_ae_name")
        raise PolicyError(f"{name} is read-only: {name}.{attr} cannot be changed")

    def __delattr__(self, attr: str) -> None:
        self.__setattr__(attr, None)

    def __dir__(self) -> list[str]:
        return sorted(object.__getattribute__(self, "_ae_members"))

    def __repr__(self) -> str:
        return f"<module '{object.__getattribute__(self, '_ae_name')}'>"


# ----- sizes checked before allocation ---------------------------------------------------------


class SizeGuard:
    """Refuses tensors with more elements than a bound, before they are allocated."""

    def __init__(self, max_elements: int) -> None:
        self.max_elements = max_elements

    def check(self, numel: float, what: str) -> None:
        """LimitExceeded when numel is over the bound."""
        if numel > self.max_elements:
            raise LimitExceeded(
                "memory",
                f"{what} would create a tensor of {numel:.3g} elements; "
                f"the limit is {self.max_elements:.3g}",
            )


def _shape_numel(args: tuple[Any, ...], kwargs: dict[str, Any]) -> float:
    size = kwargs.get("size")
    if size is None:
        if args and isinstance(args[0], (tuple, list, torch.Size)):
            size = args[0]
        else:
            size = []
            for a in args:
                if isinstance(a, bool) or not isinstance(a, int):
                    break
                size.append(a)
    if isinstance(size, int):
        size = [size]
    return math.prod(int(s) for s in size) if size else 1


def _arange_numel(args: tuple[Any, ...], kwargs: dict[str, Any]) -> float:
    numbers = [float(a) for a in args if isinstance(a, (int, float)) and not isinstance(a, bool)]
    start, end, step = 0.0, 0.0, float(kwargs.get("step", 1))
    if "end" in kwargs:
        start, end = float(kwargs.get("start", numbers[0] if numbers else 0)), float(kwargs["end"])
    elif len(numbers) == 1:
        end = numbers[0]
    elif len(numbers) >= 2:
        start, end = numbers[0], numbers[1]
        if len(numbers) >= 3:
            step = numbers[2]
    if step == 0 or not all(map(math.isfinite, (start, end, step))):
        return 0
    return max(0.0, math.ceil((end - start) / step))


def _steps_numel(args: tuple[Any, ...], kwargs: dict[str, Any]) -> float:
    steps = kwargs.get("steps", args[2] if len(args) > 2 else 100)
    return float(steps) if isinstance(steps, (int, float)) else 0


def _randint_numel(args: tuple[Any, ...], kwargs: dict[str, Any]) -> float:
    if "size" in kwargs:
        return _shape_numel((), kwargs)
    sizes = [a for a in args if isinstance(a, (tuple, list, torch.Size))]
    return _shape_numel((sizes[0],), {}) if sizes else 1


def _eye_numel(args: tuple[Any, ...], kwargs: dict[str, Any]) -> float:
    n = kwargs.get("n", args[0] if args else 1)
    m = kwargs.get("m", args[1] if len(args) > 1 and isinstance(args[1], int) else n)
    return float(n) * float(m)


def _first_numel(args: tuple[Any, ...], kwargs: dict[str, Any]) -> float:
    n = kwargs.get("n", args[0] if args else 0)
    return float(n) if isinstance(n, (int, float)) else 0


def _checked(
    fn: Callable[..., Any],
    numel_of: Callable[..., float],
    guard: SizeGuard,
    name: str,
    replacement: Callable[..., Any] | None = None,
) -> Callable[..., Any]:
    target = replacement or fn

    @functools.wraps(fn)
    def checked(*args: Any, **kwargs: Any) -> Any:
        guard.check(numel_of(args, kwargs), f"torch.{name}")
        return target(*args, **kwargs)

    return checked


def _tensor_method_numel(
    name: str, t: torch.Tensor, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> float:
    if name in ("expand",):
        sizes = (
            list(args[0]) if args and isinstance(args[0], (tuple, list, torch.Size)) else list(args)
        )
        shape = list(t.shape)
        offset = len(sizes) - len(shape)
        resolved = [
            (shape[i - offset] if s == -1 and i >= offset else s) for i, s in enumerate(sizes)
        ]
        return math.prod(int(s) for s in resolved) if resolved else 1
    if name == "expand_as":
        return float(args[0].numel()) if args and isinstance(args[0], torch.Tensor) else 0
    if name in ("repeat", "tile"):
        sizes = (
            list(args[0]) if args and isinstance(args[0], (tuple, list, torch.Size)) else list(args)
        )
        return float(t.numel()) * math.prod(int(s) for s in sizes) if sizes else t.numel()
    if name == "repeat_interleave":
        repeats = args[0] if args else kwargs.get("repeats", 1)
        if isinstance(repeats, torch.Tensor):
            return float(repeats.sum()) * (t.numel() / max(1, repeats.numel()))
        return float(t.numel()) * float(repeats)
    return _shape_numel(args, kwargs)  # new_zeros / new_ones / new_full / new_empty


CHECKED_TENSOR_METHODS = frozenset(
    {
        "expand",
        "expand_as",
        "repeat",
        "tile",
        "repeat_interleave",
        "new_zeros",
        "new_ones",
        "new_full",
        "new_empty",
    }
)


def _checked_tensor_method(t: torch.Tensor, name: str, guard: SizeGuard) -> Callable[..., Any]:
    method = t.new_zeros if name == "new_empty" else getattr(t, name)

    def checked(*args: Any, **kwargs: Any) -> Any:
        guard.check(_tensor_method_numel(name, t, args, kwargs), f"Tensor.{name}")
        return method(*args, **kwargs)

    return checked


# ----- allow-lists -----------------------------------------------------------------------------

TORCH_FUNCTIONS = """
tensor as_tensor from_numpy zeros_like ones_like full_like rand_like randn_like randint_like
add sub subtract mul multiply div divide true_divide floor_divide remainder fmod pow exp exp2 expm1
log log2 log10 log1p sqrt rsqrt abs absolute neg negative sign sin cos tan asin acos atan atan2
sinh cosh tanh sigmoid relu clamp clip clamp_min clamp_max floor ceil round trunc frac reciprocal
square erf erfc softmax log_softmax logsumexp matmul mm bmm mv dot outer inner addmm addmv addcmul
addcdiv einsum maximum minimum fmax fmin where lerp hypot cross cumsum cumprod diff
sum mean nanmean std var std_mean var_mean max min amax amin aminmax argmax argmin median prod
norm dist all any count_nonzero allclose isclose equal eq ne gt ge lt le isnan isinf isfinite
logical_and logical_or logical_not logical_xor sort argsort topk kthvalue unique
cat concat concatenate stack hstack vstack chunk split tensor_split reshape flatten squeeze
unsqueeze transpose permute t swapaxes movedim index_select masked_select masked_fill gather scatter
scatter_add narrow flip roll unbind diag diagonal tril triu trace nonzero broadcast_tensors
is_tensor is_floating_point numel manual_seed seed no_grad enable_grad set_grad_enabled
is_grad_enabled inference_mode device Size Tensor dtype finfo iinfo
float32 float float64 double float16 half bfloat16 int8 int16 short int32 int int64 long uint8
bool complex64 cfloat complex128 cdouble pi e inf nan
""".split()
TORCH_FACTORIES: dict[str, Callable[[tuple[Any, ...], dict[str, Any]], float]] = {
    "zeros": _shape_numel,
    "ones": _shape_numel,
    "empty": _shape_numel,
    "rand": _shape_numel,
    "randn": _shape_numel,
    "full": _shape_numel,
    "arange": _arange_numel,
    "range": _arange_numel,
    "linspace": _steps_numel,
    "logspace": _steps_numel,
    "randint": _randint_numel,
    "eye": _eye_numel,
    "randperm": _first_numel,
    "normal": _shape_numel,
}
NN_NAMES = """
Module Sequential ModuleList ModuleDict Parameter ParameterList ParameterDict Linear Bilinear
Identity Flatten Unflatten Conv1d Conv2d ConvTranspose2d MaxPool1d MaxPool2d AvgPool1d AvgPool2d
AdaptiveAvgPool1d AdaptiveAvgPool2d AdaptiveMaxPool2d BatchNorm1d BatchNorm2d LayerNorm GroupNorm
Dropout Dropout2d Embedding RNN LSTM GRU RNNCell LSTMCell GRUCell MultiheadAttention
TransformerEncoderLayer TransformerEncoder TransformerDecoderLayer TransformerDecoder
ReLU ReLU6 LeakyReLU PReLU ELU SELU GELU SiLU Mish Sigmoid Tanh Softmax LogSoftmax Softplus
Hardtanh Softsign MSELoss L1Loss SmoothL1Loss HuberLoss BCELoss BCEWithLogitsLoss
CrossEntropyLoss NLLLoss KLDivLoss CosineEmbeddingLoss MarginRankingLoss
""".split()
F_NAMES = """
relu relu6 leaky_relu elu selu gelu silu mish sigmoid tanh softmax log_softmax softplus
softsign hardtanh linear bilinear conv1d conv2d max_pool1d max_pool2d avg_pool1d avg_pool2d
adaptive_avg_pool1d adaptive_avg_pool2d dropout layer_norm batch_norm group_norm embedding
one_hot pad normalize cosine_similarity pairwise_distance cross_entropy nll_loss mse_loss
l1_loss smooth_l1_loss huber_loss binary_cross_entropy binary_cross_entropy_with_logits kl_div
""".split()
INIT_NAMES = """
normal_ uniform_ zeros_ ones_ constant_ eye_ xavier_uniform_ xavier_normal_ kaiming_uniform_
kaiming_normal_ orthogonal_ trunc_normal_ calculate_gain
""".split()
OPTIM_NAMES = "SGD Adam AdamW RMSprop Adagrad Adadelta Adamax".split()
NUMPY_NAMES = """
array asarray zeros ones full arange linspace eye zeros_like ones_like
float16 float32 float64 int8 int16 int32 int64 uint8 bool_ pi e inf nan newaxis
sum mean std var min max amin amax argmin argmax abs exp log log2 log10 sqrt square sin cos tan
tanh maximum minimum clip dot matmul outer transpose reshape concatenate stack vstack hstack
where allclose isclose round floor ceil sign cumsum prod sort argsort unique ravel squeeze
expand_dims mgrid meshgrid
""".split()
NUMPY_RANDOM_NAMES = "seed rand randn randint normal uniform choice permutation shuffle".split()

TENSOR_ATTRIBUTES = (
    frozenset(
        """
    add sub mul div true_divide floor_divide remainder fmod pow matmul mm bmm mv dot outer neg
    abs exp exp2 expm1 log log2 log10 log1p sqrt rsqrt sin cos tan asin acos atan atan2 sinh
    cosh tanh sigmoid relu clamp clamp_min clamp_max clip floor ceil round trunc frac sign
    reciprocal square erf softmax log_softmax logsumexp lerp addmm addcmul addcdiv maximum
    minimum where masked_fill hypot cumsum cumprod prod sum mean nanmean std var max min amax
    amin aminmax argmax argmin median norm dist all any count_nonzero logical_and logical_or
    logical_not logical_xor eq ne gt ge lt le equal allclose isclose isnan isinf isfinite sort
    argsort topk kthvalue unique diff
    add_ sub_ mul_ div_ pow_ clamp_ clamp_min_ clamp_max_ zero_ fill_ copy_ normal_ uniform_
    exp_ log_ neg_ abs_ sqrt_ relu_ sigmoid_ tanh_ masked_fill_ requires_grad_ index_add_
    scatter_ scatter_add_ t_ transpose_ squeeze_ unsqueeze_ detach_ addmm_ addcmul_ addcdiv_
    lerp_ round_ floor_ ceil_ sign_ cos_ sin_ fill_diagonal_ clip_
    view view_as reshape reshape_as flatten unflatten squeeze unsqueeze transpose permute t T
    mT contiguous chunk split tensor_split narrow select index_select masked_select gather
    scatter scatter_add index_add flip roll unbind movedim swapaxes diag diagonal tril triu trace
    cross nonzero float double half bfloat16 int long short bool byte char to type_as cpu cuda
    numpy tolist item clone detach new_tensor
    shape size dim ndim numel nelement dtype device is_cuda is_leaf requires_grad grad grad_fn
    data retain_grad retains_grad backward register_hook register_post_accumulate_grad_hook
    is_contiguous element_size stride layout is_floating_point is_complex real imag angle conj
    output_nr
    """.split()
    )
    | CHECKED_TENSOR_METHODS
)
TENSOR_SETTABLE = frozenset({"requires_grad", "grad", "data"})
NDARRAY_ATTRIBUTES = frozenset(
    """
    shape dtype ndim size T sum mean std var min max argmax argmin reshape astype tolist item
    copy flatten ravel transpose dot clip round squeeze cumsum any all prod
    """.split()
)
NODE_ATTRIBUTES = frozenset(
    "name next_functions metadata register_hook register_prehook variable".split()
)
OPTIMIZER_ATTRIBUTES = frozenset(
    "step zero_grad param_groups state state_dict add_param_group defaults".split()
)
MODULE_REFUSED = frozenset(
    "share_memory compile ipu xpu mtia to_empty register_module register_parameter "
    "register_buffer load_state_dict set_extra_state get_extra_state".split()
)
FUNCTION_CLASS_ATTRIBUTES = frozenset({"apply", "forward", "backward"})
SAFE_VALUE_TYPES: tuple[type, ...] = (
    int,
    float,
    complex,
    bool,
    str,
    list,
    tuple,
    dict,
    set,
    frozenset,
    range,
    slice,
    torch.dtype,
    torch.device,
    torch.finfo,
    torch.iinfo,
    type(None),
)
BUILTIN_NAMES = """
abs all any bool complex dict divmod enumerate filter float frozenset hash int isinstance
issubclass len list map max min pow range repr reversed round set slice sorted str sum super
tuple zip staticmethod chr ord bin hex oct ValueError TypeError RuntimeError True False None
NotImplemented
""".split()


def _format_template_ok(template: str) -> bool:
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError:
        return False
    return not any("." in f or "[" in f for f in fields)


class Capabilities:
    """The objects and guards one program run gets; nothing else is reachable from its code."""

    def __init__(self, max_elements: int, cuda_allowed: bool) -> None:
        self.sizes = SizeGuard(max_elements)
        self.cuda_allowed = cuda_allowed
        self.modules = self._build_modules()

    # ----- the modules ---------------------------------------------------------------------

    def _build_modules(self) -> dict[str, ModuleProxy]:
        sizes = self.sizes
        torch_members: dict[str, Any] = {
            n: getattr(torch, n) for n in TORCH_FUNCTIONS if hasattr(torch, n)
        }
        for name, numel_of in TORCH_FACTORIES.items():
            if not hasattr(torch, name):
                continue
            replacement = torch.zeros if name == "empty" else None
            torch_members[name] = _checked(getattr(torch, name), numel_of, sizes, name, replacement)
        torch_members["empty_like"] = torch.zeros_like  # no uninitialised memory from earlier runs
        init = ModuleProxy("torch.nn.init", {n: getattr(nn.init, n) for n in INIT_NAMES})
        functional = ModuleProxy(
            "torch.nn.functional", {n: getattr(F, n) for n in F_NAMES if hasattr(F, n)}
        )
        nn_members: dict[str, Any] = {n: getattr(nn, n) for n in NN_NAMES if hasattr(nn, n)}
        nn_members.update(functional=functional, init=init)
        nn_proxy = ModuleProxy("torch.nn", nn_members)
        optim_proxy = ModuleProxy("torch.optim", {n: getattr(optim, n) for n in OPTIM_NAMES})
        autograd = ModuleProxy(
            "torch.autograd",
            {
                "grad": torch.autograd.grad,
                "backward": torch.autograd.backward,
                "Function": torch.autograd.Function,
            },
        )
        cuda = ModuleProxy("torch.cuda", {"is_available": self._cuda_available})
        torch_members.update(nn=nn_proxy, optim=optim_proxy, autograd=autograd, cuda=cuda)
        np_members: dict[str, Any] = {n: getattr(np, n) for n in NUMPY_NAMES if hasattr(np, n)}
        np_members["random"] = ModuleProxy(
            "numpy.random", {n: getattr(np.random, n) for n in NUMPY_RANDOM_NAMES}
        )
        math_members = {n: getattr(math, n) for n in dir(math) if not n.startswith("_")}
        return {
            "torch": ModuleProxy("torch", torch_members),
            "torch.nn": nn_proxy,
            "torch.nn.functional": functional,
            "torch.optim": optim_proxy,
            "math": ModuleProxy("math", math_members),
            "numpy": ModuleProxy("numpy", np_members),
        }

    def _cuda_available(self) -> bool:
        return self.cuda_allowed and torch.cuda.is_available()

    def import_module(
        self,
        name: str,
        globals: Any = None,
        locals: Any = None,
        fromlist: Iterable[str] | None = (),
        level: int = 0,
    ) -> ModuleProxy:
        """The __import__ of a program: proxies for the allowed modules, PolicyError otherwise."""
        if level or name not in self.modules:
            raise PolicyError(f"import of '{name}' is not available")
        if fromlist:
            return self.modules[name]
        return self.modules[name.split(".")[0]]

    # ----- attribute guards ----------------------------------------------------------------

    def getattr(self, obj: Any, name: str) -> Any:
        """obj.name for a program: allowed per type, PolicyError otherwise."""
        if name.startswith("_"):
            if name == "__init__" and isinstance(obj, super):
                return obj.__init__
            raise PolicyError(
                f"attribute '{name}' starts with '_': such attributes are not available"
            )
        if name in REFUSED_ATTRIBUTES:
            raise PolicyError(f"attribute '{name}' is not available")
        if isinstance(obj, ModuleProxy):
            return getattr(obj, name)
        if isinstance(obj, torch.Tensor) or obj is torch.Tensor or obj is nn.Parameter:
            return self._tensor_attribute(obj, name)
        if self._allowed(obj, name):
            return getattr(obj, name)
        kind = obj.__name__ if isinstance(obj, type) else type(obj).__name__
        raise PolicyError(f"attribute '{name}' of {kind} is not available in the explorer")

    def _tensor_attribute(self, obj: Any, name: str) -> Any:
        if name not in TENSOR_ATTRIBUTES:
            raise PolicyError(f"Tensor.{name} is not available in the explorer")
        if name == "cuda" and not self._cuda_available():
            raise PolicyError("Tensor.cuda is not available: this run has no CUDA device")
        if name in CHECKED_TENSOR_METHODS and isinstance(obj, torch.Tensor):
            return _checked_tensor_method(obj, name, self.sizes)
        return getattr(obj, name)

    def _allowed(self, obj: Any, name: str) -> bool:
        if isinstance(obj, type):
            return self._class_attribute_allowed(obj, name)
        if isinstance(obj, str) and name == "format":
            return _format_template_ok(obj)
        if isinstance(obj, (nn.Module,)):
            return name not in MODULE_REFUSED
        if isinstance(obj, torch.autograd.function.FunctionCtx):  # ctx of a custom Function
            return True
        if isinstance(obj, torch.autograd.graph.Node):
            return name in NODE_ATTRIBUTES
        if isinstance(obj, optim.Optimizer):
            return name in OPTIMIZER_ATTRIBUTES
        if isinstance(obj, np.ndarray):
            return name in NDARRAY_ATTRIBUTES
        if isinstance(obj, np.generic):
            return name in {"item", "dtype", "shape", "tolist", "astype"}
        if isinstance(obj, SAFE_VALUE_TYPES):
            return name != "format_map"
        return type(obj).__module__ == PROGRAM_MODULE

    @staticmethod
    def _class_attribute_allowed(cls: type, name: str) -> bool:
        if issubclass(cls, torch.autograd.Function):
            return name in FUNCTION_CLASS_ATTRIBUTES
        if cls.__module__ == PROGRAM_MODULE:
            return True
        if issubclass(cls, nn.Module):
            return name not in MODULE_REFUSED
        return cls in SAFE_VALUE_TYPES and name not in ("format", "format_map")

    def setattr(self, obj: Any, name: str, value: Any) -> None:
        """obj.name = value for a program: its own objects, modules, ctx, a few tensor fields."""
        if name.startswith("_"):
            raise PolicyError(
                f"attribute '{name}' starts with '_': such attributes are not available"
            )
        if isinstance(obj, torch.Tensor):
            if name not in TENSOR_SETTABLE:
                raise PolicyError(f"Tensor.{name} cannot be set in the explorer")
        elif isinstance(obj, type) or isinstance(obj, ModuleProxy):
            raise PolicyError(f"'{name}' of a class or module cannot be set in the explorer")
        elif isinstance(obj, nn.Module):
            if name in MODULE_REFUSED:
                raise PolicyError(f"Module.{name} cannot be set in the explorer")
        elif not (
            isinstance(obj, torch.autograd.function.FunctionCtx)
            or type(obj).__module__ == PROGRAM_MODULE
        ):
            raise PolicyError(f"attributes of {type(obj).__name__} cannot be set in the explorer")
        setattr(obj, name, value)

    # ----- the namespace -------------------------------------------------------------------

    def builtins(self, print_function: Callable[..., None]) -> dict[str, Any]:
        """The builtins a program gets: an allow-list, a captured print and a guarded import."""
        allowed = {n: getattr(builtins, n) for n in BUILTIN_NAMES}
        allowed.update(
            print=print_function,
            __import__=self.import_module,
            __build_class__=builtins.__build_class__,
        )
        return allowed
