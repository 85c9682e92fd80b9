// Command deny answers requests carrying a configured header with a local response.
package main

import (
	"encoding/json"

	"hlocaltest/abi"
)

func main() {}

//go:wasmexport proxy_abi_version_0_2_100
func abiVersion() {}

type config struct {
	Header string `json:"header"`
	Status int    `json:"status"`
	Body   string `json:"body"`
}

type plugin struct{ cfg config }

func init() { abi.Register(func(uint32) abi.Plugin { return &plugin{} }) }

func (p *plugin) OnConfigure(raw []byte) bool {
	p.cfg = config{Header: "x-deny", Status: 403, Body: "denied by hlocal test"}
	if len(raw) == 0 {
		return true
	}
	if err := json.Unmarshal(raw, &p.cfg); err != nil {
		abi.Log(abi.LogError, "deny: invalid configuration: "+err.Error())
		return false
	}
	return true
}

func (p *plugin) NewHttpContext(uint32) abi.HttpContext { return &stream{cfg: &p.cfg} }

type stream struct {
	abi.DefaultHttpContext
	cfg *config
}

func (s *stream) OnRequestHeaders(int, bool) abi.Action {
	if _, err := abi.GetHeader(abi.RequestHeaders, s.cfg.Header); err != nil {
		return abi.Continue
	}
	abi.SendLocalResponse(s.cfg.Status, s.cfg.Body, [][2]string{{"x-denied-by", "deny"}})
	return abi.StopIteration
}
