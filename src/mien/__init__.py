"""mien: facial expression recognition on FER2013.

Nothing heavy is imported here: `import mien` stays cheap, and torch, matplotlib or
onnxruntime are imported by the submodules that need them.
"""

__version__ = "0.1.0"
