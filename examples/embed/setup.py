import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

import cyconv

extension = Extension(
    "embed_demo._sobel",
    ["src/embed_demo/_sobel.pyx"],
    include_dirs=[numpy.get_include(), cyconv.get_include()],
)
setup(ext_modules=cythonize([extension], compiler_directives={"language_level": 3}))
