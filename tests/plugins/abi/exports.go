package abi

// Plugin is one configured instance of a plugin (a proxy-wasm root context).
type Plugin interface {
	// OnConfigure receives the plugin configuration; false rejects it.
	OnConfigure(config []byte) bool
	NewHttpContext(contextID uint32) HttpContext
}

// HttpContext handles one HTTP stream. Embed DefaultHttpContext and override what you need.
type HttpContext interface {
	OnRequestHeaders(numHeaders int, endOfStream bool) Action
	OnRequestBody(bodySize int, endOfStream bool) Action
	OnResponseHeaders(numHeaders int, endOfStream bool) Action
	OnResponseBody(bodySize int, endOfStream bool) Action
	OnDone()
}

type DefaultHttpContext struct{}

func (DefaultHttpContext) OnRequestHeaders(int, bool) Action  { return Continue }
func (DefaultHttpContext) OnRequestBody(int, bool) Action     { return Continue }
func (DefaultHttpContext) OnResponseHeaders(int, bool) Action { return Continue }
func (DefaultHttpContext) OnResponseBody(int, bool) Action    { return Continue }
func (DefaultHttpContext) OnDone()                            {}

type callout struct {
	caller uint32
	cb     func(numHeaders, bodySize, numTrailers int)
}

var (
	newPlugin     func(rootID uint32) Plugin
	plugins       = map[uint32]Plugin{}
	streams       = map[uint32]HttpContext{}
	callouts      = map[uint32]callout{}
	activeContext uint32
)

// Register sets the factory for root contexts; call it from init().
func Register(factory func(rootID uint32) Plugin) { newPlugin = factory }

//go:wasmexport proxy_on_context_create
func onContextCreate(contextID, rootID uint32) {
	if rootID == 0 {
		plugins[contextID] = newPlugin(contextID)
		return
	}
	if p, ok := plugins[rootID]; ok {
		streams[contextID] = p.NewHttpContext(contextID)
	}
}

//go:wasmexport proxy_on_vm_start
func onVMStart(rootID, vmConfigSize uint32) bool { return true }

//go:wasmexport proxy_on_configure
func onConfigure(rootID, configSize uint32) bool {
	p, ok := plugins[rootID]
	if !ok {
		return false
	}
	activeContext = rootID
	var config []byte
	if configSize > 0 {
		var err error
		if config, err = GetBuffer(PluginConfiguration, int(configSize)); err != nil {
			Log(LogError, "abi: cannot read plugin configuration: "+err.Error())
			return false
		}
	}
	return p.OnConfigure(config)
}

func stream(contextID uint32) HttpContext {
	activeContext = contextID
	return streams[contextID]
}

//go:wasmexport proxy_on_request_headers
func onRequestHeaders(contextID, numHeaders uint32, endOfStream bool) Action {
	if s := stream(contextID); s != nil {
		return s.OnRequestHeaders(int(numHeaders), endOfStream)
	}
	return Continue
}

//go:wasmexport proxy_on_request_body
func onRequestBody(contextID, bodySize uint32, endOfStream bool) Action {
	if s := stream(contextID); s != nil {
		return s.OnRequestBody(int(bodySize), endOfStream)
	}
	return Continue
}

//go:wasmexport proxy_on_response_headers
func onResponseHeaders(contextID, numHeaders uint32, endOfStream bool) Action {
	if s := stream(contextID); s != nil {
		return s.OnResponseHeaders(int(numHeaders), endOfStream)
	}
	return Continue
}

//go:wasmexport proxy_on_response_body
func onResponseBody(contextID, bodySize uint32, endOfStream bool) Action {
	if s := stream(contextID); s != nil {
		return s.OnResponseBody(int(bodySize), endOfStream)
	}
	return Continue
}

//go:wasmexport proxy_on_http_call_response
func onHttpCallResponse(rootID, token, numHeaders, bodySize, numTrailers uint32) {
	c, ok := callouts[token]
	if !ok {
		return
	}
	delete(callouts, token)
	if _, alive := streams[c.caller]; !alive && c.caller != rootID {
		return // the stream ended before the answer arrived
	}
	// Host calls made from the callback must act on the calling stream, not the root.
	hostSetEffectiveContext(c.caller)
	activeContext = c.caller
	c.cb(int(numHeaders), int(bodySize), int(numTrailers))
}

//go:wasmexport proxy_on_done
func onDone(contextID uint32) bool {
	if s := stream(contextID); s != nil {
		s.OnDone()
	}
	return true
}

//go:wasmexport proxy_on_log
func onLog(contextID uint32) {}

//go:wasmexport proxy_on_delete
func onDelete(contextID uint32) {
	delete(streams, contextID)
	delete(plugins, contextID)
}
