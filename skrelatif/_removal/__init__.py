"""Beyond first order: Newton leave-one-out, group removal, exact removal and
flip sets, one module each (:mod:`.newton`, :mod:`.groups`, :mod:`.exact`,
:mod:`.flips`). The mathematics they share:

Core code over what a parametric adapter declares (outputs ``f`` (K per
example), their Jacobian ``J_i = df_i/dtheta`` (K x P), the loss gradient
``r_i = dl/df`` and curvature ``D_i = d²l/df²``). With ``w_i = c s_i``:

Removing a group ``G`` of training examples leaves the objective
``F_G = F - sum_{i in G} w_i l_i``. At the fitted ``theta*`` its gradient is
``-sum_{i in G} w_i g_i = -J_G^T v`` (``v`` the stacked ``w_i r_i``) and its
Hessian ``H - J_G^T M J_G`` (``M = blockdiag(w_i D_i)``). One Newton step
from ``theta*`` is, by the Woodbury identity
``(H - J^T M J)^-1 J^T = H^-1 J^T (I - M A)^-1`` with ``A = J H^-1 J^T``
(the K x K blocks ``x̃_i^T (H^-1)_{kl} x̃_j`` for a linear model)::

    delta_G = H^-1 J_G^T u_G,   u_G = (I - M_G A_G)^-1 v_G           (1)

a rank ``|G| K`` update that never forms a P x P matrix per group. A group
with ``|G| K > P`` (half of the training set) takes the same step in
parameter space, ``delta_G = (I - H^-1 J_G^T M_G J_G)^-1 H^-1 J_G^T v_G``,
a P x P solve instead of a ``|G| K`` one. For one
example, ``u_i = w_i (I - w_i D_i A_i)^-1 r_i`` (a K x K solve). The losses
are evaluated exactly at the updated parameters ``theta* + delta``. When the
outputs are linear in theta (linear models and GLMs: the adapter's
``outputs_linear_in_params``) the outputs of any point move exactly by
``J_t delta_i = (J_t H^-1 J_i^T) u_i``, which needs no parameter vector per
example: the test loss is evaluated at the moved outputs, and the example's
own loss at ``f_i + A_i u_i`` is its approximate leave-one-out loss.
Otherwise (networks) the step ``delta_i`` itself is formed, a chunk of
training examples at a time (the solver on their stacked Jacobian rows),
and the losses come from the forward pass at ``theta* + delta_i``. For a
quadratic objective (squared loss of a linear model) the step is the exact
leave-one-out solution.

Any vector: ``(H - J^T M J)^-1 z = H^-1 z + H^-1 J^T (I - M A)^-1 M J H^-1 z``.

Objectives whose data term is normalised by the total weight but whose
penalty is not (GLMs: ``1/sum(s)``; SGD: ``1/n``) are renormalised by
scikit-learn when it refits on fewer
rows. Minimising ``1/(S - s_G) sum_{j not in G} s_j l_j + R`` is minimising
``F - c sum_G s_i l_i - rho_G R`` with ``rho_G = sum_G rho_i`` (the adapter's
``penalty_shares``, e.g. ``s_i / S``): the penalty gains relative weight. Its
gradient adds ``rho_G p theta*`` to the right-hand side of the step, so with
``z = H^-1 p theta*``::

    delta_G = H^-1 J_G^T (I - M_G A_G)^-1 (v_G + rho_G M_G J_G z) + rho_G z  (2)

(the Woodbury inverse applied to ``rho_G p theta*``). The Hessian's own
change ``-rho_G diag(p)`` is left out of the step: a relative error of at most
``rho_G / (1 - rho_G)`` (``1/(n-1)`` for one example), which the exact
removal's iterations then remove.

Networks divide their penalty by the same total as the data term
(``alpha / (2 S)``): a refit on fewer rows keeps their relative weight, so
``rho = 0`` and (2) is (1).

Exact removal iterates ``theta <- theta - (H_G)^-1 grad F_G(theta)`` from
``theta*``: first with the leave-one-out Hessian at ``theta*`` (the Woodbury
form above; each step costs one gradient pass and one solve), then with
fresh Hessians if that converges slowly, until the step is at most ``tol``
times the parameter change.

With softmax intercepts ``H`` is singular along the common shift of the
outputs; ``D_i 1 = 0`` and every ``r_i`` sums to 0, so every vector above
stays orthogonal to that direction and ``H^-1`` is the solver's inverse on
its complement.
"""
