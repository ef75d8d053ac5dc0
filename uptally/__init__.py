"""The ``uptally`` command: the composition root. It sits above everything it starts
(``core``, ``server``, ``dashboard``, ``bench``); nothing below imports it."""
