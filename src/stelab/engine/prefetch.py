"""A software prefetch for compiled loops: numba has none, LLVM has ``llvm.prefetch``.

``prefetch(array, i, j)`` inside an ``@numba.njit`` function asks the CPU to bring the cache line
of ``array[i, j]`` (a 2-d array) towards the core, for reading, with high temporal locality. It
is a hint: it never changes a result, and a CPU without prefetch instructions ignores it. Used
where a loop reads rows at scattered places, which the hardware prefetchers do not foresee.
"""

from __future__ import annotations

from typing import Any

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["prefetch"]


@intrinsic
def prefetch(typingctx: Any, array: types.Array, i: types.Integer, j: types.Integer) -> Any:
    """Prefetch the cache line of ``array[i, j]`` for reading (numba intrinsic)."""
    signature = types.void(array, i, j)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        array_type = sig.args[0]
        view = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, array_type, view,
                                           [args[1], args[2]], wraparound=False)
        byte_pointer = builder.bitcast(pointer, ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte_pointer.type, i32, i32, i32]),
            "llvm.prefetch.p0i8",
        )
        # (address, read = 0, locality = 3: keep in all cache levels, data cache = 1)
        builder.call(function, [byte_pointer, ir.Constant(i32, 0), ir.Constant(i32, 3),
                                ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return signature, codegen
