// Command headers adds and removes headers and echoes host properties as request headers.
package main

import (
	"encoding/json"
	"strings"

	"hlocaltest/abi"
)

func main() {}

// buildTag is set at link time (go build -ldflags "-X main.buildTag=b2"); when non-empty every
// response carries x-build: <buildTag>, so two builds differ in bytes and in what a client sees.
var buildTag string

// Higress SDK builds export this ABI version; stock Envoy needs it renamed.
//
//go:wasmexport proxy_abi_version_0_2_100
func abiVersion() {}

type config struct {
	RequestHeaders       map[string]string `json:"request_headers"`
	ResponseHeaders      map[string]string `json:"response_headers"`
	RemoveRequestHeaders []string          `json:"remove_request_headers"`
	EchoProperties       []string          `json:"echo_properties"`
	Reject               bool              `json:"reject"`
}

type plugin struct{ cfg config }

func init() { abi.Register(func(uint32) abi.Plugin { return &plugin{} }) }

func (p *plugin) OnConfigure(raw []byte) bool {
	if err := parse(raw, &p.cfg); err != nil {
		abi.Log(abi.LogError, "headers: invalid configuration: "+err.Error())
		return false
	}
	return true
}

type configError string

func (e configError) Error() string { return string(e) }

func parse(raw []byte, cfg *config) error {
	if len(strings.TrimSpace(string(raw))) == 0 {
		return nil // no configuration: do nothing
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return configError("not a JSON object: " + err.Error())
	}
	if err := json.Unmarshal(raw, cfg); err != nil {
		return err
	}
	if cfg.Reject {
		return configError(`"reject" is true`)
	}
	return nil
}

func (p *plugin) NewHttpContext(uint32) abi.HttpContext { return &stream{cfg: &p.cfg} }

type stream struct {
	abi.DefaultHttpContext
	cfg *config
}

func (s *stream) OnRequestHeaders(int, bool) abi.Action {
	for _, name := range s.cfg.RemoveRequestHeaders {
		abi.RemoveHeader(abi.RequestHeaders, name)
	}
	for k, v := range s.cfg.RequestHeaders {
		abi.AddHeader(abi.RequestHeaders, k, v)
	}
	for _, name := range s.cfg.EchoProperties {
		abi.AddHeader(abi.RequestHeaders, "x-prop-"+name, property(name))
	}
	return abi.Continue
}

func (s *stream) OnResponseHeaders(int, bool) abi.Action {
	for k, v := range s.cfg.ResponseHeaders {
		abi.AddHeader(abi.ResponseHeaders, k, v)
	}
	if buildTag != "" {
		abi.AddHeader(abi.ResponseHeaders, "x-build", buildTag)
	}
	return abi.Continue
}

// property reads a dotted property name ("xds.route_name" is the path xds, route_name)
// and renders it as a header-safe string.
func property(name string) string {
	value, err := abi.GetProperty(strings.Split(name, ".")...)
	if err == abi.StatusNotFound {
		return "(missing)"
	}
	if err != nil {
		return "(error: " + err.Error() + ")"
	}
	for _, c := range value {
		if c < 0x20 || c > 0x7e {
			return "hex:" + hexString(value)
		}
	}
	return string(value)
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}
