// Command httpcall calls a cluster before letting a request through and forwards the answer as headers.
package main

import (
	"encoding/json"
	"strings"

	"hlocaltest/abi"
)

func main() {}

//go:wasmexport proxy_abi_version_0_2_100
func abiVersion() {}

type config struct {
	Cluster   string `json:"cluster"`
	Path      string `json:"path"`
	TimeoutMs uint32 `json:"timeout_ms"`
}

type plugin struct{ cfg config }

func init() { abi.Register(func(uint32) abi.Plugin { return &plugin{} }) }

func (p *plugin) OnConfigure(raw []byte) bool {
	p.cfg = config{Cluster: "outbound|8080||auth.internal", Path: "/check", TimeoutMs: 1000}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &p.cfg); err != nil {
			abi.Log(abi.LogError, "httpcall: invalid configuration: "+err.Error())
			return false
		}
	}
	return true
}

func (p *plugin) NewHttpContext(uint32) abi.HttpContext { return &stream{cfg: &p.cfg} }

type stream struct {
	abi.DefaultHttpContext
	cfg *config
}

// authority is the host part of a wasm-go cluster name: outbound|PORT|SUBSET|HOST.
func authority(cluster string) string {
	if i := strings.LastIndexByte(cluster, '|'); i >= 0 {
		return cluster[i+1:]
	}
	return cluster
}

func (s *stream) OnRequestHeaders(int, bool) abi.Action {
	headers := [][2]string{
		{":method", "GET"},
		{":path", s.cfg.Path},
		{":authority", authority(s.cfg.Cluster)},
	}
	_, err := abi.HttpCall(s.cfg.Cluster, headers, nil, s.cfg.TimeoutMs, onResponse)
	if err != nil {
		abi.Log(abi.LogError, "httpcall: dispatch to "+s.cfg.Cluster+" failed: "+err.Error())
		abi.SendLocalResponse(502, "httpcall: dispatch failed", nil)
		return abi.StopIteration
	}
	return abi.StopIteration
}

func onResponse(numHeaders, bodySize, numTrailers int) {
	status, err := abi.GetHeader(abi.HttpCallResponseHeaders, ":status")
	if err != nil {
		status = "none" // no response: reset, timeout or connection failure
	}
	body, _ := abi.GetBuffer(abi.HttpCallResponseBody, min(bodySize, 100))
	abi.AddHeader(abi.RequestHeaders, "x-call-status", status)
	abi.AddHeader(abi.RequestHeaders, "x-call-body", headerSafe(body))
	abi.ContinueStream(abi.StreamRequest)
}

// headerSafe keeps printable ASCII so the value is a legal header value.
func headerSafe(b []byte) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c >= 0x20 && c <= 0x7e {
			out = append(out, c)
		} else {
			out = append(out, ' ')
		}
	}
	return strings.TrimSpace(string(out))
}
