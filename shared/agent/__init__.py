"""The canvas DSL executor (RAGFlow's agents): components, the DSL's checks, and the run of one turn.

No web framework, storage or cloud SDK here: a run gets chat models and the tenant's datasets through
:class:`shared.agent.runtime.Runtime`, and the session's state travels in the DSL it returns.
"""
