"""The HTTP front door: an enqueue API for web apps in any language, and an operator console.

``engage-sms api`` serves it (FastAPI on uvicorn, the ``[http]`` extra). It sits on the public
API (:mod:`tasks.api`) and the state stores, adding only what HTTP callers need: API tokens
(:mod:`tasks.http.tokens`), request limits (:mod:`tasks.http.limits`), which token sent which key
and where its signed callback goes (:mod:`tasks.http.sends`, :mod:`tasks.http.callbacks`), and the
console's sessions (:mod:`tasks.http.sessions`). Everything it keeps in Redis is named in
:mod:`tasks.http.keys`.
"""
