"""Standards of severity error stop a release; warnings do not."""

from __future__ import annotations

from pathlib import Path

from quanta.context import MeshContext


def test_an_error_finding_blocks_the_release_of_that_product_only(tiny_mesh: Path) -> None:
    findings = MeshContext(tiny_mesh).standards().findings
    lacking = sorted({f.product for f in findings if f.code == "slos-required"})
    assert lacking and "shop.orders" not in lacking  # orders declares SLOs
    mesh_yaml = tiny_mesh / "mesh.yaml"
    mesh_yaml.write_text(mesh_yaml.read_text()
                         + "governance:\n  severity: {slos-required: error}\n")
    results = {r.product: r for r in MeshContext(tiny_mesh).build()}
    for key in lacking:
        error = results[key].error
        assert error is not None and error.code == "standards_failed"
        assert "slos" in error.message.lower() and "governance.severity" in (error.hint or "")
        assert results[key].release is None
    assert results["shop.orders"].ok


def test_warnings_do_not_block(tiny_mesh: Path) -> None:
    findings = MeshContext(tiny_mesh).standards().findings
    assert findings and {f.severity for f in findings} <= {"warn", "info"}
    assert all(r.ok for r in MeshContext(tiny_mesh).build())
