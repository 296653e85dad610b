"""CUDA recipes, one module per wrapper family; each defines ``RECIPES`` (see ``base.py``).

The registry is the core one: ``vkc.invoke.core.registry("cuda")`` imports every module here
(``base`` and ``_*`` excepted) and fails loudly on a module that does not import, lacks
``RECIPES`` or claims a kernel another module claims.
"""
