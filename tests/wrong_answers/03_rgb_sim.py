"""Chapter 3: plausible wrong answers that pass the visible tests; the hidden tests must catch each one.

The test cells run after the setup cell (tagged "setup"), so its names (np, torch, models, camera, push, K, E, ...)
are in scope."""

WRONG = {
    "ex1_encoder": '''
def soft_argmax(features):
    # uses the width's grid for both axes: right on square maps only
    B, C, H, W = features.shape
    p = torch.softmax(features.reshape(B, C, H * W), dim=-1).reshape(B, C, H, W)
    grid = torch.linspace(-1, 1, W)
    return torch.stack([(p.sum(dim=2) * grid).sum(dim=-1), (p.sum(dim=3) * grid).sum(dim=-1)], dim=-1)


def encoder_loss(encoder, images, targets):
    points = soft_argmax(encoder.conv(encoder.preprocess(images)))
    prediction = encoder.head(points.flatten(start_dim=1))
    targets = torch.as_tensor(targets, dtype=torch.float32)
    return ((prediction - encoder.out_norm.normalise(targets)) ** 2).mean()
''',
    "ex2_occlusion": '''
def occlusion_report(errors, tcp, cube, intrinsics, extrinsics, radius_px=6.0, worst=20):
    # "covered" only asks whether the two points are close in the image, not which is in front
    errors = np.asarray(errors, dtype=float)
    uv_t, _ = camera.project(tcp, intrinsics, extrinsics)
    uv_c, _ = camera.project(cube, intrinsics, extrinsics)
    distance = np.linalg.norm(uv_t - uv_c, axis=1)
    covered = distance < radius_px
    order = np.argsort(-errors, kind="stable")[:min(worst, len(errors))]
    mean_or_nan = lambda x: float(x.mean()) if len(x) else float("nan")
    return {"pixel_distance": distance, "covered": covered, "worst": order,
            "covered_among_worst": mean_or_nan(covered[order]), "covered_overall": mean_or_nan(covered),
            "error_covered": mean_or_nan(errors[covered]), "error_uncovered": mean_or_nan(errors[~covered])}
''',
}
