"""What caviar's local pages share (panda's babysitting page, the live study dashboard): the
gate every request passes (:mod:`caviar.web.security`), what a request body may be
(:mod:`caviar.web.bodies`) and the server thread (:mod:`caviar.web.serving`). Nothing is
imported here: starlette and uvicorn load only where a page is served.
"""
