"""Builds the Cython rollup engine unless UPTALLY_NO_EXTENSIONS is set."""

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
                include_dirs=[numpy.get_include()],
                define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
                + ([("CYTHON_TRACE_NOGIL", "1")] if debug else []),
                extra_compile_args=["-O3"],
            )
        ],
        annotate=debug,
        compiler_directives={"linetrace": True} if debug else {},
    )

setup(ext_modules=ext_modules)
