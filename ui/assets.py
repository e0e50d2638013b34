"""The UI's CSS and its one piece of JavaScript (opening a citation when its [n] is clicked).

Kept apart from ``ui.app`` so the layout code stays readable. The JavaScript only shows and
hides HTML that Python generated from escaped text; it never builds markup from data.
"""

from __future__ import annotations

# Runs once when the sources panel mounts. The [n] links live inside the chatbot, whose
# sanitizer may drop classes, so they are recognised by their href ("#aa-cite-<turn>-<n>").
# Capture phase: the chatbot must not treat the click as a navigation.
CITE_JS = """
if (!window.__aaCiteHandler) {
  window.__aaCiteHandler = true;
  document.addEventListener('click', function (ev) {
    const link = ev.target && ev.target.closest ? ev.target.closest('a[href^="#aa-cite-"]') : null;
    if (!link) return;
    ev.preventDefault();
    ev.stopPropagation();
    const card = document.getElementById(link.getAttribute('href').slice(1));
    if (!card) return;
    const turn = card.closest('.aa-turn');
    document.querySelectorAll('.aa-turn').forEach(function (t) {
      t.classList.toggle('aa-hidden', t !== turn);
    });
    document.querySelectorAll('.aa-card.aa-active').forEach(function (c) {
      c.classList.remove('aa-active');
    });
    card.classList.add('aa-active');
    card.scrollIntoView({block: 'nearest'});
  }, true);
}
"""

# Scoped by Gradio to the gr.HTML components that use it (sources panel, summary, status).
SOURCES_CSS = """
.aa-hidden { display: none; }
.aa-turn h4 { margin: 0 0 .5em 0; font-size: .95em; }
.aa-card { border: 1px solid var(--border-color-primary); border-radius: 8px;
           padding: .6em .8em; margin-bottom: .6em; background: var(--background-fill-primary); }
.aa-card.aa-active { border: 2px solid var(--color-accent); box-shadow: 0 0 0 3px
                     var(--color-accent-soft); }
.aa-card header { font-weight: 600; }
.aa-num { color: var(--color-accent); margin-right: .2em; }
.aa-meta { font-size: .85em; color: var(--body-text-color-subdued); margin: .2em 0 .4em; }
.aa-passage { margin: .3em 0 0 0; padding-left: .7em;
              border-left: 3px solid var(--border-color-primary);
              font-size: .92em; line-height: 1.45; }
.aa-passage mark { background: #ffe58a; color: #222; padding: 0 .1em; border-radius: 2px; }
.aa-empty { color: var(--body-text-color-subdued); }
.aa-bad { color: var(--error-text-color, #b42318); }
.aa-status { display: grid; grid-template-columns: repeat(auto-fit, minmax(12em, 1fr));
             gap: .5em 1.5em; margin: 0; }
.aa-status dt { font-size: .8em; color: var(--body-text-color-subdued); }
.aa-status dd { margin: 0; font-weight: 600; word-break: break-all; }
"""

# Global CSS (passed to launch): the [n] links inside chat messages.
APP_CSS = """
#aa-chat a[href^="#aa-cite-"] { text-decoration: none; font-weight: 600; font-size: .85em;
  padding: 0 .3em; margin: 0 .1em; border-radius: 4px; cursor: pointer;
  background: var(--color-accent-soft); color: var(--color-accent); }
#aa-chat a[href^="#aa-cite-"]:hover { background: var(--color-accent); color: white; }
"""
