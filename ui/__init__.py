"""The Gradio chat UI over the indexed articles (`assistant ui`).

``ui.render`` turns answers, citations and index listings into HTML built only from escaped
text; ``ui.handlers`` holds the event logic as plain functions (testable without Gradio);
``ui.app`` wires them into a ``gr.Blocks`` and launches it.
"""
