"""The PyTorch backend: the networks' forward passes as plain ops, and the train step."""
import keras
import torch
import torch.nn.functional as F

from agent.backend.layers import plain_layers


def q_function(model):
    """``f(states) -> numpy action values`` without autograd."""
    from agent.network import action_values

    forward = forward_of(model)

    def q_values(states):
        with torch.no_grad():
            return action_values(forward(states)).float().cpu().numpy()

    return q_values


def train_step(online, target, optimizer, compute_loss):
    online_forward, target_forward = forward_of(online), forward_of(target)

    def run(s_tm1, a_tm1, r_t, discount_t, s_t, weights):
        a_tm1, r_t, discount_t, weights = (keras.ops.convert_to_tensor(x) for x in (a_tm1, r_t, discount_t, weights))
        with torch.no_grad():
            q_t_online = online_forward(s_t)
            q_t_target = target_forward(s_t)
        q_tm1 = online_forward(s_tm1, training=True)
        loss, mean_q, td_errors = compute_loss(q_tm1, a_tm1, r_t, discount_t, q_t_online, q_t_target, weights)
        for variable in online.trainable_variables:
            variable.value.grad = None
        loss.backward()
        gradients = [v.value.grad for v in online.trainable_variables]
        with torch.no_grad():
            optimizer.apply(gradients, online.trainable_variables)
        return float(loss.detach()), float(mean_q.detach()), td_errors.detach().cpu().numpy()

    return run


def forward_of(model):
    """``f(states, training=False) -> q_values``, the model's forward pass as plain PyTorch ops on its
    live variables (none of the translated layers acts differently in training); the model's own
    call where a layer has no translation below.

    Keras's per-layer call machinery is most of a forward pass on PyTorch for a network this small
    (docs/performance.md). Layers compute in their own dtype policy, as Keras does.
    """
    plan = plain_layers(model)
    if plan is None:
        return lambda states, training=False: model(states, training=training)
    activations = {keras.activations.relu: F.relu, keras.activations.linear: lambda x: x}
    ops, channels_first = [], False
    for kind, layer in plan:
        dtype = getattr(torch, layer.compute_dtype)
        activation = activations.get(getattr(layer, "activation", None))
        if kind == "rescale":
            ops.append(lambda x, d=dtype, a=float(layer.scale), b=float(layer.offset): x.to(d) * a + b)
        elif kind == "conv":
            if not channels_first:
                ops.append(lambda x: x.permute(0, 3, 1, 2))
                channels_first = True
            ops.append(lambda x, d=dtype, k=layer.kernel, b=layer.bias, s=layer.strides, f=activation:
                       f(F.conv2d(x.to(d), k.value.to(d).permute(3, 2, 0, 1), b.value.to(d), stride=s)))
        elif kind == "flatten":
            if channels_first:
                ops.append(lambda x: x.permute(0, 2, 3, 1))
                channels_first = False
            ops.append(lambda x: x.flatten(1))
        else:
            ops.append(lambda x, d=dtype, k=layer.kernel, b=layer.bias, f=activation:
                       f(torch.addmm(b.value.to(d), x.to(d), k.value.to(d))))
    if channels_first:
        ops.append(lambda x: x.permute(0, 2, 3, 1))
    device = model.weights[0].value.device

    def forward(states, training=False):
        x = torch.as_tensor(states, device=device)
        for op in ops:
            x = op(x)
        return x

    return forward
