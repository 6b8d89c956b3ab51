"""dlnotes: the tested code behind the book 深度学习笔记 · Deep Learning Notes.

Import the modules a chapter needs: ``from dlnotes import config, data, train, plot``.
"""

__version__ = "0.1.0"
