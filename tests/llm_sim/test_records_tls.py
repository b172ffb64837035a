"""The request log, the stats endpoint, and HTTPS with the test CA."""

from __future__ import annotations

import ssl

import httpx
import pytest

from tests.fakes import tls
from tests.llm_sim.conftest import AUTH, FAST, MODEL, StartSim, chat_body, post_chat, requests_log, stats


def ca_context(ca: tls.TestCA) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca.cert_path))


def test_every_request_is_recorded(start_sim: StartSim) -> None:
    url = start_sim(*FAST).url
    body = chat_body("lsass read by procdump", max_tokens=7, temperature=0)
    assert post_chat(url, body).status_code == 200
    assert post_chat(url, {**body, "model": "nope"}).status_code == 400
    assert httpx.get(f"{url}/health", headers=AUTH, timeout=10).status_code == 200
    assert httpx.get(f"{url}/health/liveliness").status_code == 200
    httpx.post(f"{url}/_sim/faults", json={"kind": "500", "count": 1})
    assert post_chat(url, body).status_code == 500
    log = requests_log(url)
    assert [(r["path"], r["status"]) for r in log] == [
        ("/v1/chat/completions", 200), ("/v1/chat/completions", 400), ("/health", 200),
        ("/health/liveliness", 200), ("/v1/chat/completions", 500)]
    first = log[0]
    assert first["model"] == MODEL
    assert first["body"] == body
    assert first["completion_tokens"] == 7
    assert first["prompt_tokens"] > 10
    assert first["slot"] in range(4)
    assert first["cached_tokens"] == 0
    assert first["fault"] is None
    assert first["client_hung_up"] is False
    assert first["received_at"] <= first["answered_at"]
    assert log[-1]["fault"] == "500"
    assert log[2]["completion_tokens"] == 1  # the health check's 1-token call

    counts = stats(url)
    assert counts["requests"] == 5
    assert counts["by_status"] == {"200": 3, "400": 1, "500": 1}
    assert counts["faults"] == {"500": 1}
    assert counts["queue_length"] == 0
    assert counts["completed_jobs"] == 2
    assert counts["cpu_busy_seconds"] > 0

    assert httpx.delete(f"{url}/_sim/requests").status_code == 200
    assert requests_log(url) == []


def test_cpu_busy_time_adds_up(start_sim: StartSim) -> None:
    url = start_sim("--pp-rate", "1000", "--tg-rate", "1000", "--overhead-ms", "0").url
    data = post_chat(url, chat_body(max_tokens=50)).json()
    busy = stats(url)["cpu_busy_seconds"]
    timings = data["timings"]
    assert busy == pytest.approx((timings["prompt_ms"] + timings["predicted_ms"]) / 1000, rel=0.05)


def test_https_with_the_test_ca(start_sim: StartSim, server_cert: tls.ServerCert, test_ca: tls.TestCA) -> None:
    server = start_sim("--instant", "--tls-cert", str(server_cert.cert), "--tls-key", str(server_cert.key))
    assert server.url.startswith("https://127.0.0.1:")
    with httpx.Client(verify=ca_context(test_ca)) as client:
        response = client.post(f"{server.url}/v1/chat/completions", json=chat_body(), headers=AUTH)
        assert response.status_code == 200
        assert response.json()["choices"][0]["message"]["content"]
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"), httpx.Client() as client:
        client.get(f"{server.url}/health/liveliness")
    # The failed handshake did not hurt the server.
    with httpx.Client(verify=ca_context(test_ca)) as client:
        assert client.get(f"{server.url}/health/liveliness").json() == "I'm alive!"
    with pytest.raises(httpx.TransportError):
        httpx.get(server.url.replace("https://", "http://") + "/health/liveliness", timeout=5)


def test_https_hang_up_is_detected(start_sim: StartSim, server_cert: tls.ServerCert, test_ca: tls.TestCA) -> None:
    server = start_sim("--instant", "--slots", "1", "--tls-cert", str(server_cert.cert),
                       "--tls-key", str(server_cert.key))
    httpx.post(f"{server.url}/_sim/faults", json={"kind": "hang", "count": 1}, verify=ca_context(test_ca))
    with httpx.Client(verify=ca_context(test_ca)) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.post(f"{server.url}/v1/chat/completions", json=chat_body(), headers=AUTH, timeout=0.3)
        response = client.post(f"{server.url}/v1/chat/completions", json=chat_body(), headers=AUTH, timeout=10)
        assert response.status_code == 200


def test_log_keeps_the_newest_records(start_sim: StartSim) -> None:
    url = start_sim("--instant", "--log-limit", "3").url
    for i in range(5):
        assert post_chat(url, chat_body(f"alert {i}")).status_code == 200
    log = requests_log(url)
    assert [r["body"]["messages"][1]["content"] for r in log] == ["alert 2", "alert 3", "alert 4"]
    assert stats(url)["records_dropped"] == 2
