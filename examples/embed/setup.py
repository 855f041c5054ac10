from Cython.Build import cythonize
from setuptools import Extension, setup

import cyconv

# cythonize() turns the .pyx into C at build time (the C output is not kept
# in git). The C-level API needs only cyconv's headers: no NumPy C API.
extension = Extension(
    "embed_demo._sobel",
    ["src/embed_demo/_sobel.pyx"],
    include_dirs=[cyconv.get_include()],
)
setup(ext_modules=cythonize([extension], compiler_directives={"language_level": 3}))
