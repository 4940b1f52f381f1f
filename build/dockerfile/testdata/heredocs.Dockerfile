FROM busybox
RUN <<EOF
echo one
echo two
EOF
RUN cat <<-"END" > /file
	tab-indented $NOT_EXPANDED
	END
COPY <<a <<b /dir/
first ${VAR}
a
second
b
RUN 3<<EOF cat /dev/fd/3
fd three
EOF
