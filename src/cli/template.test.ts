import { describe, expect, it } from 'vitest';
import { TemplateError, compile, formatValue, render } from './template.js';

const sb = {
  Id: 'f00dfeed1234',
  Name: 'web',
  State: { Status: 'running', Pid: 42, ExitCode: null },
  Config: { Cmd: ['sleep', '60'], Env: [] as string[] },
  HostConfig: { Links: [] as string[], PublishAllPorts: false },
  NetworkSettings: {
    Ports: ['0.0.0.0:8080->80/tcp', '0.0.0.0:8443->443/tcp'],
    Networks: {
      front: { IPAddress: '10.1.0.2', Aliases: ['w', 'www'] },
      back: { IPAddress: '10.2.0.2', Aliases: [] as string[] },
    },
  },
  Labels: { 'com.example.role': 'edge' },
};

const ok = (t: string, data: unknown = sb) => render(t, data);
const err = (t: string, data: unknown = sb) => {
  try {
    render(t, data);
  } catch (e) {
    expect(e).toBeInstanceOf(TemplateError);
    return (e as Error).message;
  }
  throw new Error(`${t} rendered without an error`);
};

describe('fields and text', () => {
  it('copies text around actions and resolves field chains', () => {
    expect(ok('name={{.Name}} pid={{.State.Pid}}!')).toBe('name=web pid=42!');
    expect(ok('{{.NetworkSettings.Networks.front.IPAddress}}')).toBe('10.1.0.2');
    expect(ok('no actions at all')).toBe('no actions at all');
    expect(ok('')).toBe('');
  });

  it('prints values as Go does', () => {
    expect(ok('{{.Config.Cmd}}')).toBe('[sleep 60]');
    expect(ok('{{.State}}')).toBe('map[ExitCode:<nil> Pid:42 Status:running]');
    expect(ok('{{.State.ExitCode}}')).toBe('<nil>');
    expect(ok('{{.HostConfig.PublishAllPorts}}')).toBe('false');
    expect(ok('{{.Config.Env}}')).toBe('[]');
    expect(formatValue({ b: [1, 2], a: { c: 'x' } })).toBe('map[a:map[c:x] b:[1 2]]');
  });

  it('{{.}} and {{$}} are the whole value', () => {
    expect(ok('{{.}}', 'plain')).toBe('plain');
    expect(ok('{{range .Config.Cmd}}{{$.Name}}:{{.}} {{end}}')).toBe('web:sleep web:60 ');
  });
});

describe('json, index and the other functions', () => {
  it('json gives compact JSON of any value', () => {
    expect(JSON.parse(ok('{{json .}}'))).toEqual(sb);
    expect(ok('{{json .NetworkSettings.Ports}}')).toBe('["0.0.0.0:8080->80/tcp","0.0.0.0:8443->443/tcp"]');
    expect(ok('{{json .State.ExitCode}}')).toBe('null');
    expect(ok('{{.State | json}}')).toBe('{"Status":"running","Pid":42,"ExitCode":null}');
  });

  it('index reads map keys with dots in them, list items and nested keys', () => {
    expect(ok('{{index .Labels "com.example.role"}}')).toBe('edge');
    expect(ok('{{index .NetworkSettings.Ports 1}}')).toBe('0.0.0.0:8443->443/tcp');
    expect(ok('{{index .NetworkSettings.Networks "front" "Aliases" 1}}')).toBe('www');
    // A missing map key is Go's zero value, as `docker inspect` prints it.
    expect(ok('{{index .Labels "absent"}}')).toBe('<no value>');
    expect(ok('{{(index .NetworkSettings.Networks "back").IPAddress}}')).toBe('10.2.0.2');
  });

  it('len, join, upper, lower, printf, println, truncate', () => {
    expect(ok('{{len .NetworkSettings.Networks}} {{len .Config.Cmd}} {{len .Name}}')).toBe('2 2 3');
    expect(ok('{{join .Config.Cmd ","}}')).toBe('sleep,60');
    expect(ok('{{upper .Name}}{{lower "ABC"}}')).toBe('WEBabc');
    expect(ok('{{printf "%s has pid %d (%q) %%" .Name .State.Pid .Name}}')).toBe('web has pid 42 ("web") %');
    expect(ok('{{printf "%-5s|%5s|" .Name .Name}}')).toBe('web  |  web|');
    expect(ok('{{println .Name .State.Pid}}')).toBe('web 42\n');
    expect(ok('{{truncate .Id 4}}')).toBe('f00d');
    expect(ok('{{.Name | printf "<%s>"}}')).toBe('<web>');
  });

  it('eq, ne, lt, not, and, or', () => {
    expect(ok('{{eq .State.Status "running"}} {{eq .State.Status "exited" "running"}} {{ne .Name "web"}}')).toBe('true true false');
    expect(ok('{{lt .State.Pid 100}} {{gt 1 2}} {{not .Config.Env}} {{and .Name .State.Pid}} {{or .Config.Env "none"}}')).toBe('true false true 42 none');
  });
});

describe('range, if, with, variables', () => {
  it('ranges over lists and over maps in key order', () => {
    expect(ok('{{range .NetworkSettings.Ports}}<{{.}}>{{end}}')).toBe('<0.0.0.0:8080->80/tcp><0.0.0.0:8443->443/tcp>');
    expect(ok('{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}')).toBe('10.2.0.2 10.1.0.2 ');
    expect(ok('{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}};{{end}}')).toBe('back=10.2.0.2;front=10.1.0.2;');
    expect(ok('{{range $i, $p := .Config.Cmd}}{{$i}}:{{$p}} {{end}}')).toBe('0:sleep 1:60 ');
    expect(ok('{{range $p := .Config.Cmd}}{{$p}}.{{end}}')).toBe('sleep.60.');
  });

  it('range over nothing takes its else', () => {
    expect(ok('{{range .Config.Env}}{{.}}{{else}}no env{{end}}')).toBe('no env');
    expect(ok('{{range .State.ExitCode}}x{{else}}nil{{end}}')).toBe('nil');
  });

  it('nested ranges see their own dot and the outer variables', () => {
    expect(ok('{{range $n, $e := .NetworkSettings.Networks}}{{range .Aliases}}{{$n}}/{{.}} {{end}}{{end}}')).toBe('front/w front/www ');
  });

  it('if / else if / else and with', () => {
    const t = compile('{{if eq .State.Status "running"}}up{{else if .State.ExitCode}}exit {{.State.ExitCode}}{{else}}down{{end}}');
    expect(t.execute(sb)).toBe('up');
    expect(t.execute({ State: { Status: 'exited', ExitCode: 3 } })).toBe('exit 3');
    expect(t.execute({ State: { Status: 'exited', ExitCode: 0 } })).toBe('down');
    expect(ok('{{with .NetworkSettings.Networks.front}}{{.IPAddress}}{{end}}')).toBe('10.1.0.2');
    expect(ok('{{with .Config.Env}}{{.}}{{else}}empty{{end}}')).toBe('empty');
  });

  it('declares and assigns variables, scoped to their block', () => {
    expect(ok('{{$n := .Name}}{{$n}}-{{$n = "x"}}{{$n}}')).toBe('web-x');
    expect(ok('{{$c := 0}}{{range .Config.Cmd}}{{$c = .}}{{end}}{{$c}}')).toBe('60');
    expect(err('{{range .Config.Cmd}}{{$v := .}}{{end}}{{$v}}')).toMatch(/undefined variable: \$v/);
  });
});

describe('whitespace and comments', () => {
  it('{{- and -}} trim the text beside them', () => {
    expect(ok('a  {{- .Name -}}  b')).toBe('awebb');
    expect(ok('{{range .Config.Cmd -}}\n  {{.}}\n{{- end}}')).toBe('sleep60');
    expect(ok('{{if true -}}   yes   {{- end}}')).toBe('yes');
  });

  it('comments print nothing', () => {
    expect(ok('a{{/* what? */}}b{{- /* trimmed */ -}}  c')).toBe('abc');
  });

  it('strings may hold delimiters and escapes', () => {
    expect(ok('{{"}}"}}{{`{{raw}}`}}{{"a\\tb"}}')).toBe('}}{{raw}}a\tb');
  });
});

describe('errors name the bad token and where it is', () => {
  it('a missing field is named, with its parent and the fields there are', () => {
    expect(err('{{.State.Statsu}}')).toBe('template: 1:3: executing at <.State.Statsu>: no field "Statsu" in .State (it has: Status, Pid, ExitCode)');
    expect(err('ok {{.Nme}}')).toBe('template: 1:6: executing at <.Nme>: no field "Nme" in . (it has: Id, Name, State, Config, HostConfig, NetworkSettings, Labels)');
    expect(err('{{range .NetworkSettings.Networks}}{{.IPAdress}}{{end}}')).toMatch(/^template: 1:38: executing at <\.IPAdress>: no field "IPAdress" in \. \(it has: IPAddress, Aliases\)$/);
    expect(err('{{$v := .State}}{{$v.Foo}}')).toMatch(/executing at <\$v\.Foo>: no field "Foo" in \$v \(it has/);
  });

  it('a field of null, of a string, of a list', () => {
    expect(err('{{.State.ExitCode.Code}}')).toMatch(/at <\.State\.ExitCode\.Code>: \.State\.ExitCode is null: it has no field "Code"/);
    expect(err('{{.Name.First}}')).toMatch(/at <\.Name\.First>: can't evaluate field First in string \.Name/);
    expect(err('{{.Config.Cmd.First}}')).toMatch(/can't evaluate field First in list \.Config\.Cmd/);
  });

  it('line and column count from the start of the line', () => {
    expect(err('line one\n  and {{.Bad}}')).toMatch(/^template: 2:9: /);
  });

  it('syntax errors name what is wrong', () => {
    expect(err('{{.Name')).toBe('template: 1:1: unclosed action (no "}}" after "{{")');
    expect(err('{{if .Name}}x')).toBe('template: 1:1: unexpected EOF: {{if}} at 1:1 has no {{end}}');
    expect(err('x{{end}}')).toBe('template: 1:2: unexpected {{end}}');
    expect(err('{{range .X}}{{else}}{{else}}{{end}}')).toMatch(/a second \{\{else\}\} in \{\{range\}\}/);
    expect(err('{{"open}}')).toMatch(/^template: 1:3: unterminated quoted string "open\}\}/);
    expect(err('{{nosuch .Name}}')).toMatch(/^template: 1:3: function "nosuch" not defined \(there are: json, index/);
    expect(err('{{.Name ) }}')).toMatch(/^template: 1:9: unexpected "\)" in operand/);
    expect(err('{{(index .Labels "a"}}')).toMatch(/unclosed left paren/);
    expect(err('{{}}')).toMatch(/missing value for command/);
    expect(err('{{.Name | }}')).toMatch(/missing value for command/);
    expect(err('{{ # }}')).toBe('template: 1:4: unexpected "#" in action');
    expect(err('{{template "x"}}')).toMatch(/\{\{template\}\} is not supported/);
    expect(err('{{12ab}}')).toMatch(/bad number syntax "12ab"/);
    expect(err('{{/* open')).toMatch(/unclosed comment/);
  });

  it('a syntax error is found before anything runs', () => {
    expect(() => compile('{{.A}}{{if}}')).toThrow(/missing value for if/);
  });

  it('calls with the wrong arguments say what was wanted', () => {
    expect(err('{{join .Config.Cmd}}')).toMatch(/at <join>: wrong number of args for join: want 2 got 1/);
    expect(err('{{index .Config.Cmd 5}}')).toMatch(/error calling index: index out of range: 5 \(the list has 2\)/);
    expect(err('{{index .Config.Cmd "a"}}')).toMatch(/cannot index a list with string a/);
    expect(err('{{len .State.Pid}}')).toMatch(/error calling len: len of type number/);
    expect(err('{{.Name .State}}')).toMatch(/can't give argument to non-function \.Name/);
    expect(err('{{range .Name}}{{end}}')).toMatch(/^template: 1:9: executing at <\.Name>: range can't iterate over string web/);
    expect(err('{{lt .Name 3}}')).toMatch(/incompatible types for comparison: string and number/);
    expect(err('{{$nope}}')).toMatch(/undefined variable: \$nope/);
  });
});
