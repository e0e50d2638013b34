"""The extractive reader: question analysis, answer candidates, a fitted scorer.

Import the pieces from their modules (``assistant.reader.reader.Reader``,
``assistant.reader.analysis.analyse``); nothing heavy is loaded at import.
"""
