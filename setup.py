"""Builds the Cython rollup engine unless UPTALLY_NO_EXTENSIONS is set."""

import glob
import os

from setuptools import Extension, setup

if os.environ.get("UPTALLY_NO_EXTENSIONS"):
    print("pure Python build")
    ext_modules = []
else:
    import numpy
    from Cython.Build import cythonize

    print("accelerated build")
    debug = bool(os.environ.get("UPTALLY_DEBUG_BUILD"))
    ext_modules = cythonize(
        [
            Extension(
                "core._rollup",
                ["core/_rollup.pyx"],
                include_dirs=["core", numpy.get_include()],
                # a change to the C header (or an included part) rebuilds the extension
                depends=["core/_rollup_wire.h", "core/_rollup.pxd", *glob.glob("core/*.pxi")],
                define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
                + ([("CYTHON_TRACE_NOGIL", "1")] if debug else []),
                extra_compile_args=["-O3"],
            )
        ],
        annotate=debug,
        compiler_directives={"linetrace": True} if debug else {},
    )

setup(ext_modules=ext_modules)
